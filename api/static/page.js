// The search page: one file, no framework, nothing fetched from outside this service.
// State lives in the URL (collection, q, k, b = branches, f.FIELD = filter values, lat, lon, r), so a result
// page can be shared and reloaded. Every answer is drawn from the REST API's own JSON; the API's errors are
// shown as it words them, next to the field they name.
"use strict";

const PRESET_CITIES = [
  ["Beijing", 39.9042, 116.4074], ["Shanghai", 31.2304, 121.4737], ["Shenzhen", 22.5431, 114.0579],
  ["Tokyo", 35.6762, 139.6503], ["Paris", 48.8566, 2.3522], ["London", 51.5072, -0.1276],
  ["New York", 40.7128, -74.006], ["São Paulo", -23.5505, -46.6333], ["Sydney", -33.8688, 151.2093],
];

const $ = (id) => document.getElementById(id);
let collections = [];

function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs)) {
    if (key === "text") node.textContent = value;
    else if (key.startsWith("on")) node.addEventListener(key.slice(2), value);
    else node.setAttribute(key, value);
  }
  for (const child of children) if (child) node.append(child);
  return node;
}

async function api(method, path, body) {
  const options = { method, headers: { accept: "application/json" } };
  if (body !== undefined) {
    options.headers["content-type"] = "application/json";
    options.body = JSON.stringify(body);
  }
  const response = await fetch(path, options);
  let payload = null;
  try { payload = await response.json(); } catch { payload = { detail: response.statusText }; }
  return { ok: response.ok, status: response.status, payload };
}

// ------------------------------------------------------------------------------------------------ errors
function clearErrors() {
  $("error").hidden = true;
  $("error").textContent = "";
  for (const node of document.querySelectorAll(".field-error")) node.textContent = "";
  for (const node of document.querySelectorAll(".invalid")) node.classList.remove("invalid");
}

const INPUT_OF = { query: "query", k: "k", "location.lat": "lat", "location.lon": "lon", location: "lat",
  radius_km: "radius", user_id: "user", items: "items" };

function showError(status, payload) {
  const detail = payload && payload.detail;
  if (Array.isArray(detail)) {
    for (const error of detail) {
      const field = error.field || (error.loc || []).slice(1).join(".");
      const slot = fieldSlot(field);
      const message = `${field}: ${error.msg}`;
      if (slot) slot.textContent = slot.textContent ? `${slot.textContent}\n${message}` : message;
      else showGeneral(status, message);
      const input = $(INPUT_OF[field]) || document.querySelector(`[data-filter="${field.split(".")[1]}"]`);
      if (input) input.classList.add("invalid");
    }
  } else {
    showGeneral(status, typeof detail === "string" ? detail : JSON.stringify(payload));
  }
}

function fieldSlot(field) {
  const exact = document.querySelector(`.field-error[data-field="${CSS.escape(field)}"]`);
  if (exact) return exact;
  const head = field.split(".")[0];
  return document.querySelector(`.field-error[data-field="${CSS.escape(head)}"]`);
}

function showGeneral(status, message) {
  $("error").hidden = false;
  $("error").textContent = `${status}: ${message}`;
}

// ------------------------------------------------------------------------------------------- the form
function current() { return collections.find((c) => c.name === $("collection").value); }

async function showCollection(state = new URLSearchParams()) {
  const info = current();
  if (!info) return;
  $("service-status").textContent = `${info.name}: ${info.documents.toLocaleString()} items, version ${info.version}`;
  const chosen = state.get("b") ? state.get("b").split(",") : info.branches;
  $("branches").replaceChildren(...info.branches.map((name) => el("label", {},
    el("input", { type: "checkbox", name: "branch", value: name, ...(chosen.includes(name) ? { checked: "" } : {}) }),
    name)));
  const filters = [];
  for (const field of info.keyword_fields) {
    const list = `values-${field}`;
    const input = el("input", { type: "text", "data-filter": field, list, placeholder: "any", size: "14" });
    input.value = state.get(`f.${field}`) || "";
    const options = el("datalist", { id: list });
    filters.push(el("label", {}, `${field}`, input, options));
    api("GET", `/collections/${encodeURIComponent(info.name)}/keywords/${encodeURIComponent(field)}?limit=200`)
      .then(({ ok, payload }) => {
        if (ok) options.replaceChildren(...payload.values.map((v) => el("option", { value: v.value, text: `${v.count}` })));
      });
  }
  $("filters").replaceChildren(...(filters.length ? filters : [el("span", { class: "muted", text: "no keyword fields" })]));
}

function formState() {
  const state = new URLSearchParams();
  state.set("collection", $("collection").value);
  state.set("q", $("query").value);
  state.set("k", $("k").value);
  const info = current();
  const branches = [...document.querySelectorAll("input[name=branch]:checked")].map((b) => b.value);
  if (info && branches.length !== info.branches.length) state.set("b", branches.join(","));
  for (const input of document.querySelectorAll("[data-filter]")) {
    if (input.value.trim()) state.set(`f.${input.dataset.filter}`, input.value.trim());
  }
  for (const [key, id] of [["lat", "lat"], ["lon", "lon"], ["r", "radius"]]) {
    if ($(id).value.trim()) state.set(key, $(id).value.trim());
  }
  return state;
}

function number(text) { return text === "" || text === undefined || text === null ? undefined : Number(text); }

function requestBody(state) {
  const body = { query: state.get("q") || "", k: number(state.get("k")) ?? 10, explain: true };
  if (state.has("b")) body.branches = state.get("b") ? state.get("b").split(",") : [];
  const filters = {};
  for (const [key, value] of state) {
    if (key.startsWith("f.")) {
      const values = value.split(",").map((v) => v.trim()).filter(Boolean);
      filters[key.slice(2)] = values.length === 1 ? values[0] : values;
    }
  }
  if (Object.keys(filters).length) body.filters = filters;
  if (state.has("lat") || state.has("lon")) body.location = { lat: number(state.get("lat")), lon: number(state.get("lon")) };
  if (state.has("r")) body.radius_km = number(state.get("r"));
  return body;
}

// ----------------------------------------------------------------------------------------------- results
function strip(branches) {
  return el("div", { class: "strip" }, ...Object.entries(branches).sort((a, b) => a[1] - b[1])
    .map(([name, rank]) => el("span", { class: "badge", "data-branch": name, text: `${name} #${rank}` })));
}

function featureTable(features) {
  return el("table", { class: "features" }, ...Object.entries(features)
    .map(([name, value]) => el("tr", {}, el("td", { text: name }), el("td", { text: Number(value).toFixed(4) }))));
}

function hitItem(hit, { explainable = true } = {}) {
  const details = el("div", { class: "explain", hidden: "" });
  const actions = el("div", { class: "actions" });
  if (explainable) {
    actions.append(el("button", { type: "button", class: "explain-button", text: "explain", onclick: () => {
      details.hidden = !details.hidden;
    } }));
    details.append(hit.features ? featureTable(hit.features)
      : el("div", { class: "muted", text: "no ranker features: the fusion order answered" }));
  }
  actions.append(el("button", { type: "button", class: "similar-button", text: "similar", onclick: () => similar(hit) }));
  return el("li", { class: "hit", "data-id": hit.id },
    el("span", { class: "title", text: hit.title || hit.id }),
    el("span", { class: "score", text: hit.score.toFixed(4) }),
    el("div", { class: "muted", text: `id ${hit.id}` }),
    strip(hit.branches), actions, details);
}

function meta(answer) {
  const parts = [`${answer.results.length} results`, `version ${answer.index_version}`,
    `scorer ${answer.scorer}${answer.scorer_version ? " " + answer.scorer_version : ""}`,
    `${answer.took_ms.toFixed(1)} ms`];
  if (answer.scorer_reason) parts.push(`(${answer.scorer_reason})`);
  if (answer.degraded.length) parts.push(`degraded: ${answer.degraded.join(", ")}`);
  return parts.join(" · ");
}

function branchLists(answer) {
  const lists = Object.entries(answer.explain || {}).map(([name, candidates]) => el("div", { class: "branch-list" },
    el("strong", { text: name }),
    el("ol", {}, ...candidates.slice(0, 10).map((c) => el("li", { text: `${c.id} (${c.score.toFixed(3)})` })))));
  $("branch-lists").replaceChildren(...lists);
  $("branch-panel").hidden = lists.length === 0;
}

async function search(state, { push = true } = {}) {
  clearErrors();
  const name = state.get("collection");
  const { ok, status, payload } = await api("POST", `/collections/${encodeURIComponent(name)}/search`, requestBody(state));
  if (push) history.pushState(null, "", `?${state}`);
  if (!ok) {
    showError(status, payload);
    $("results").replaceChildren();
    $("answer-meta").textContent = "";
    return;
  }
  $("answer-meta").textContent = meta(payload);
  $("results").replaceChildren(...payload.results.map((hit) => hitItem(hit)));
  branchLists(payload);
}

async function similar(hit) {
  clearErrors();
  const name = $("collection").value;
  const { ok, status, payload } = await api("GET",
    `/collections/${encodeURIComponent(name)}/similar/${encodeURIComponent(hit.id)}?k=10`);
  if (!ok) return showError(status, payload);
  $("similar-panel").hidden = false;
  $("similar-of").textContent = hit.title || hit.id;
  $("similar-meta").textContent = meta(payload);
  $("similar").replaceChildren(...payload.results.map((h) => hitItem(h, { explainable: false })));
}

async function recommend() {
  clearErrors();
  const name = $("collection").value;
  const body = { k: number($("k").value) ?? 10, explain: true };
  if ($("user").value.trim()) body.user_id = $("user").value.trim();
  const items = $("items").value.split(",").map((v) => v.trim()).filter(Boolean);
  if (items.length) body.items = items;
  const { ok, status, payload } = await api("POST", `/collections/${encodeURIComponent(name)}/recommend`, body);
  if (!ok) {
    $("recommendations").replaceChildren();
    return showError(status, payload);
  }
  $("recommend-meta").textContent = meta(payload);
  $("recommendations").replaceChildren(...payload.results.map((hit) => hitItem(hit)));
}

// ------------------------------------------------------------------------------------------------ start
function fillForm(state) {
  if (state.get("collection") && collections.some((c) => c.name === state.get("collection"))) {
    $("collection").value = state.get("collection");
  }
  $("query").value = state.get("q") || "";
  $("k").value = state.get("k") || "10";
  $("lat").value = state.get("lat") || "";
  $("lon").value = state.get("lon") || "";
  $("radius").value = state.get("r") || "";
}

async function start() {
  const { ok, status, payload } = await api("GET", "/collections");
  if (!ok) return showError(status, payload);
  collections = payload;
  $("collection").replaceChildren(...collections.map((c) => el("option", { value: c.name, text: c.name })));
  $("near").append(...PRESET_CITIES.map(([city, lat, lon]) => el("option", { value: `${lat},${lon}`, text: city })));
  const state = new URLSearchParams(location.search);
  fillForm(state);
  await showCollection(state);
  $("collection").addEventListener("change", () => showCollection());
  $("near").addEventListener("change", () => {
    if (!$("near").value) return;
    const [lat, lon] = $("near").value.split(",");
    $("lat").value = lat;
    $("lon").value = lon;
  });
  $("search-form").addEventListener("submit", (event) => { event.preventDefault(); search(formState()); });
  $("recommend-form").addEventListener("submit", (event) => { event.preventDefault(); recommend(); });
  window.addEventListener("popstate", async () => {
    const restored = new URLSearchParams(location.search);
    fillForm(restored);
    await showCollection(restored);
    if (restored.get("q")) search(restored, { push: false });
  });
  document.body.dataset.ready = "true";
  if (state.get("q")) await search(state, { push: false });
}

start();
