// The session list: GET /api/sessions, refreshed every 5 s.
"use strict";

function cell(text) {
  const td = document.createElement("td");
  td.textContent = text;
  return td;
}

async function refresh() {
  const status = document.getElementById("status");
  try {
    const r = await fetch("/api/sessions", {cache: "no-store"});
    if (!r.ok) {
      status.textContent = "query app unavailable (" + r.status + ")";
      return;
    }
    const body = await r.json();
    const tbody = document.querySelector("#sessions tbody");
    tbody.replaceChildren();
    for (const s of body.sessions) {
      const tr = document.createElement("tr");
      tr.className = "session-row";
      const td = document.createElement("td");
      const a = document.createElement("a");
      a.href = "/sessions/" + encodeURIComponent(s.session_id);
      a.textContent = s.session_id;
      td.append(a);
      tr.append(td, cell(s.content_events), cell(s.queries), cell(s.answers));
      tbody.append(tr);
    }
    document.getElementById("empty").hidden = body.sessions.length > 0;
    status.textContent = body.sessions.length + " session" + (body.sessions.length === 1 ? "" : "s");
  } catch (e) {
    status.textContent = "cannot reach the query app";
  }
}

refresh();
setInterval(refresh, 5000);
