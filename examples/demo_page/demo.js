// The demo page: four fetch() calls to the API through cors-edge, and what the browser
// let this script see of each. Served from an allowed and from a refused origin by
// examples/demo_pages.py; ?api=URL points it at another cors-edge (the tests do).
"use strict";

const API = new URLSearchParams(location.search).get("api") || "http://localhost:8080";
const HEADER = "CORS-Edge-Decision";
const ALLOWED_PAGE = "http://localhost:3000";
const REFUSED_PAGE = "http://127.0.0.1:3001";

// Cookies are per host, not per port: this one travels to the API on the same host
// when a call says credentials: "include" (and the answer must then allow credentials).
document.cookie = "session=demo-page-cookie; path=/; SameSite=Lax";

const CALLS = [
  {id: "get", label: "simple GET", request: "GET /api/items", path: "/api/items", init: {}},
  {
    id: "put",
    label: "preflighted PUT",
    request: "PUT /api/items/1, Content-Type: application/json",
    path: "/api/items/1",
    init: {
      method: "PUT",
      headers: {"Content-Type": "application/json"},
      body: JSON.stringify({name: "renamed by " + location.origin}),
    },
  },
  {
    id: "credentialed",
    label: "credentialed GET",
    request: "GET /api/me with the page's cookie (credentials: include)",
    path: "/api/me",
    init: {credentials: "include"},
  },
  {
    id: "refused-method",
    label: "refused method",
    request: "PATCH /api/items/1 (not in the route's methods)",
    path: "/api/items/1",
    init: {method: "PATCH"},
  },
];

function cell(row, className, text) {
  const td = document.createElement("td");
  td.className = className;
  td.textContent = text;
  row.appendChild(td);
  return td;
}

async function run(call) {
  try {
    const response = await fetch(API + call.path, call.init);
    await response.text();
    const decision = response.headers.get(HEADER);
    return {
      verdict: "read",
      status: String(response.status),
      decision: decision === null ? `(${HEADER} not exposed to script)` : decision,
    };
  } catch (error) {
    return {
      verdict: "blocked",
      status: "none",
      decision: `blocked: script sees only "${error.name}: ${error.message}"; ` +
        `${HEADER} is in DevTools' Network tab`,
    };
  }
}

async function main() {
  const me = location.origin;
  document.getElementById("origin").textContent = me;
  document.getElementById("api").textContent = API;
  const other = me === ALLOWED_PAGE ? REFUSED_PAGE : ALLOWED_PAGE;
  const link = document.getElementById("other-link");
  link.href = other + "/" + location.search;
  link.textContent = other;
  document.getElementById("other-role").textContent =
    other === ALLOWED_PAGE ? "the origin the shipped policy allows" : "an origin it refuses";
  const body = document.querySelector("#calls tbody");
  for (const call of CALLS) {
    const row = document.createElement("tr");
    row.dataset.call = call.id;
    row.className = "pending";
    const name = cell(row, "call", call.label);
    const small = document.createElement("small");
    small.textContent = call.request;
    name.appendChild(small);
    const verdict = cell(row, "verdict", "…");
    const status = cell(row, "status", "");
    const decision = cell(row, "decision", "");
    body.appendChild(row);
    const result = await run(call);
    row.className = result.verdict;
    row.dataset.verdict = result.verdict;
    row.dataset.status = result.status;
    verdict.textContent = result.verdict;
    status.textContent = result.status;
    decision.textContent = result.decision;
  }
  document.body.dataset.done = "true";
}

main();
