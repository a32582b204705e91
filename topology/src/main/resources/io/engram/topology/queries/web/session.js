// One session's page: renders GET /api/sessions/{id} (see SessionView.java) and re-renders on every
// "session" event of /api/sessions/{id}/stream (Server-Sent Events). No libraries; text goes in through
// textContent only.
"use strict";

const sessionId = decodeURIComponent(location.pathname.replace(/^\/sessions\//, "").replace(/\/$/, ""));
const api = "/api/sessions/" + encodeURIComponent(sessionId);
let view = null;
let selected = null; // query id picked by a click; null follows the newest answer

function el(tag, props, ...children) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(props || {})) {
    if (v === null || v === undefined || v === false) continue;
    if (k === "class") e.className = v;
    else if (k === "text") e.textContent = v;
    else if (k.startsWith("data-") || k === "title" || k === "href" || k === "id") e.setAttribute(k, v);
    else e[k] = v;
  }
  for (const c of children) if (c !== null && c !== undefined) e.append(c);
  return e;
}

function coords(s) {
  return s ? s.topic + "/" + s.partition + "/" + s.offset : "?";
}

function time(ms) {
  return new Date(ms).toLocaleTimeString();
}

function segmentTitle(seg, what) {
  return what + "\n" + "Kafka: topic " + seg.source.topic + ", partition " + seg.source.partition + ", offset "
      + seg.source.offset + "\nevent " + seg.event_id + ", chars " + seg.char_start + "–" + seg.char_end
      + "\nscore " + seg.score.toFixed(4) + ", rank " + seg.rank;
}

function selectedAnswer() {
  if (!view || view.answers.length === 0) return null;
  return view.answers.find(a => a.query_id === selected) || view.answers[view.answers.length - 1];
}

// ---------------------------------------------------------------- answers and summary

function renderSummary() {
  const box = document.getElementById("summary");
  const s = view.latest_summary;
  if (!s) {
    box.replaceChildren(el("h2", {text: "Latest summary"}), el("p", {class: "muted", text: "No summary yet."}));
    return;
  }
  box.replaceChildren(
      el("h2", {text: "Latest summary"}, el("span", {class: "badge", text: s.kind})),
      el("p", {class: "summary-text", text: s.text}),
      el("p", {class: "meta", text: "covers " + eventRange(s) + " · tokens " + s.first_token + "–" + s.last_token
          + " · " + s.model + " · " + time(s.created_at_ms)}));
}

function eventRange(s) {
  const name = (i, c) => i >= 0 ? "#" + i + " " + view.events[i].event_id : coords(c);
  return s.first_event_index === s.last_event_index && s.first_event_index >= 0
      ? "event " + name(s.first_event_index, s.first_event)
      : "events " + name(s.first_event_index, s.first_event) + " … " + name(s.last_event_index, s.last_event);
}

function answerText(a) {
  // the answer's own markers ("[1]") become chips that point at their citation
  const p = el("p", {class: "answer-text"});
  const markers = a.citations.map(c => c.marker).filter(m => m.length > 0);
  if (markers.length === 0) {
    p.textContent = a.text;
    return p;
  }
  const escaped = markers.map(m => m.replace(/[.*+?^${}()|[\]\\]/g, "\\$&"));
  for (const part of a.text.split(new RegExp("(" + escaped.join("|") + ")"))) {
    p.append(markers.includes(part) ? el("span", {class: "marker", text: part}) : document.createTextNode(part));
  }
  return p;
}

function citationList(a) {
  const list = el("ol", {class: "citations"});
  for (const c of a.citations) {
    const s = c.segment;
    list.append(el("li", {class: "citation", title: segmentTitle(s, "citation " + c.marker)},
        el("span", {class: "marker", text: c.marker}),
        el("span", {class: "excerpt", text: "“" + s.excerpt + "”"}),
        el("span", {class: "coords", text: coords(s.source)}),
        el("span", {class: "meta", text: "event " + s.event_id + " · chars " + s.char_start + "–" + s.char_end
            + " · score " + s.score.toFixed(3)})));
  }
  return list;
}

function attributionList(a) {
  if (a.attributions.length === 0) return null;
  const box = el("div", {class: "attributions"});
  for (const t of a.attributions) {
    const list = el("ol", {class: "segments"});
    for (const s of t.segments) {
      list.append(el("li", {class: "attribution-segment", title: segmentTitle(s, t.method + " attribution")},
          el("span", {class: "excerpt", text: "“" + s.excerpt + "”"}),
          el("span", {class: "coords", text: coords(s.source)}),
          el("span", {class: "meta", text: "score " + s.score.toFixed(3)})));
    }
    const head = t.status === "SKIPPED_BACKLOG"
        ? t.method + " attribution · skipped: the session's backlog of precise searches was full (engram.attribution.max-pending)"
        : t.method + " attribution · " + t.elapsed_ms + " ms";
    box.append(el("div", {class: "attribution", "data-method": t.method, "data-status": t.status || "COMPLETE"},
        el("h4", {text: head}), list));
  }
  return box;
}

function renderAnswers() {
  const chosen = selectedAnswer();
  const box = document.getElementById("answers");
  const cards = [];
  for (const a of view.answers.slice().reverse()) {
    const card = el("article", {class: "card answer" + (a === chosen ? " selected" : ""), "data-query-id": a.query_id},
        el("p", {class: "question"}, el("span", {class: "q", text: "Q"}),
            document.createTextNode(a.question === null ? "(question not on the input topic)" : a.question)),
        answerText(a),
        el("p", {class: "meta", text: a.generated_tokens + " tokens generated · " + a.prompt_tokens + " prompt · "
            + a.memory_tokens + " memory · " + a.timings.total_ms + " ms · " + a.model + " · query " + a.query_id
            + " at " + coords(a.query_source)}),
        citationList(a),
        attributionList(a));
    card.addEventListener("click", () => {
      selected = a.query_id;
      render();
    });
    cards.push(card);
  }
  if (cards.length === 0) cards.push(el("p", {class: "muted", text: "No answers yet."}));
  box.replaceChildren(...cards);

  const pending = document.getElementById("pending");
  pending.replaceChildren(...view.pending.map(q => el("article", {class: "card pending", "data-query-id": q.query_id},
      el("p", {class: "question"}, el("span", {class: "q", text: "Q"}), document.createTextNode(q.question)),
      el("p", {class: "muted", text: "waiting for the answer… (query " + q.query_id + " at " + coords(q.source) + ")"}))));
}

// ---------------------------------------------------------------- memory map

function retrievedSpansByEvent(chosen) {
  // event index -> the memory spans of the answer's retrieval that hold tokens of it
  const out = new Map();
  for (const r of chosen ? chosen.retrieved : []) {
    for (const i of r.event_indices) {
      if (!out.has(i)) out.set(i, []);
      out.get(i).push(r);
    }
  }
  return out;
}

function renderMap() {
  const chosen = selectedAnswer();
  const events = view.events;
  const total = events.reduce((n, e) => n + e.text.length, 0);
  const map = document.getElementById("memory-map");
  if (events.length === 0) {
    map.replaceChildren(el("p", {class: "muted", text: "No content events yet."}));
    return;
  }
  const cited = new Set(chosen ? chosen.cited_events : []);
  const attributed = new Set(chosen ? chosen.attributed_events : []);
  const retrieved = retrievedSpansByEvent(chosen);
  const before = chosen ? chosen.events_before_query : events.length;
  const pct = chars => (100 * chars / total) + "%";

  const stream = el("div", {class: "lane stream"});
  for (const e of events) {
    const cls = ["mm-event"];
    if (retrieved.has(e.index)) cls.push("retrieved");
    if (cited.has(e.index)) cls.push("cited");
    if (attributed.has(e.index)) cls.push("attributed");
    if (e.index >= before) cls.push("later");
    const cell = el("div", {class: cls.join(" "), "data-event-index": e.index, title: "event " + e.event_id + " (#"
        + e.index + ")\nKafka " + coords(e.source) + "\n" + e.text.length + " chars"
        + (cited.has(e.index) ? "\ncited by " + chosen.query_id : "")
        + (retrieved.has(e.index) ? "\nretrieved for " + chosen.query_id + ": " + retrieved.get(e.index).map(r =>
            "tokens " + r.first_token + "–" + (r.end_token - 1) + " by " + r.layers + (r.layers === 1 ? " layer" : " layers"))
            .join(", ") : "")});
    cell.style.flexGrow = String(Math.max(1, e.text.length));
    cell.addEventListener("click", () => document.getElementById("event-" + e.index)?.scrollIntoView({block: "center"}));
    stream.append(cell);
  }

  const lane = el("div", {class: "lane episodes"});
  const citedEpisodes = new Set(chosen ? chosen.cited_episodes : []);
  for (const s of view.episodes) {
    if (s.kind !== "EPISODE" || s.first_event_index < 0 || s.last_event_index < 0) continue;
    const first = events[s.first_event_index];
    const last = events[s.last_event_index];
    const from = first.stream_char_start;
    const to = last.stream_char_start + last.text.length;
    const band = el("div", {class: "mm-episode" + (citedEpisodes.has(s.index) ? " cited" : ""),
        "data-episode-index": s.index, title: "episode " + s.index + ": events #" + s.first_event_index + "–#"
        + s.last_event_index + ", tokens " + s.first_token + "–" + s.last_token + "\n" + s.text});
    band.style.left = pct(from);
    band.style.width = pct(to - from);
    lane.append(band);
  }
  if (lane.childElementCount === 0) lane.append(el("span", {class: "muted small", text: "no episode summaries yet"}));

  const axis = el("div", {class: "lane axis"},
      el("span", {text: "event #0"}), el("span", {text: total + " chars, " + events.length + " events"}));
  const rows = [el("div", {class: "lane-label", text: "stream"}), stream,
      el("div", {class: "lane-label", text: "episodes"}), lane, el("div"), axis];
  if (chosen && before < events.length) {
    const cursor = el("div", {class: "mm-query", title: "question " + chosen.query_id + " arrived here"});
    cursor.style.left = pct(events[before].stream_char_start);
    stream.append(cursor);
  }
  map.replaceChildren(...rows);

  const m = chosen ? chosen.memory : view.memory;
  document.getElementById("memory-stats").textContent = m === null ? "" : "Memory when "
      + (chosen ? "answering " + chosen.query_id : "last answering") + ": " + m.tokens + " tokens in " + m.blocks
      + " blocks, " + (m.bytes / 1024).toFixed(1) + " KiB" + (m.fingerprint ? " · fingerprint " + m.fingerprint : "");
}

// ---------------------------------------------------------------- source text

function spansOf(index, chosen) {
  // every citation and attribution segment on event #index
  const spans = [];
  for (const a of view.answers) {
    for (const c of a.citations) {
      const s = c.segment;
      if (s.event_index === index && s.char_end > s.char_start) {
        spans.push({from: s.char_start, to: s.char_end, selected: a === chosen, kind: "cite",
            title: segmentTitle(s, "citation " + c.marker + " of " + a.query_id), query: a.query_id});
      }
    }
    for (const t of a.attributions) {
      for (const s of t.segments) {
        if (s.event_index === index && s.char_end > s.char_start && t.method === "PRECISE") {
          spans.push({from: s.char_start, to: s.char_end, selected: a === chosen, kind: "attr",
              title: segmentTitle(s, "PRECISE attribution of " + a.query_id), query: a.query_id});
        }
      }
    }
  }
  return spans;
}

function highlighted(text, spans) {
  // cut the text at every span edge; each piece is marked with the spans covering it
  const cuts = new Set([0, text.length]);
  for (const s of spans) {
    cuts.add(Math.min(s.from, text.length));
    cuts.add(Math.min(s.to, text.length));
  }
  const edges = [...cuts].sort((x, y) => x - y);
  const out = [];
  for (let i = 0; i + 1 < edges.length; i++) {
    const from = edges[i];
    const to = edges[i + 1];
    const piece = text.slice(from, to);
    const over = spans.filter(s => s.from <= from && s.to >= to);
    if (over.length === 0) {
      out.push(document.createTextNode(piece));
      continue;
    }
    const cls = ["hl"];
    if (over.some(s => s.kind === "cite")) cls.push("cite");
    if (over.some(s => s.kind === "attr")) cls.push("attr");
    if (over.some(s => s.selected)) cls.push("selected");
    out.push(el("mark", {class: cls.join(" "), title: over.map(s => s.title).join("\n\n"),
        "data-query-ids": [...new Set(over.map(s => s.query))].join(" ")}, piece));
  }
  return out;
}

function renderSource() {
  const chosen = selectedAnswer();
  const box = document.getElementById("source");
  const blocks = [];
  const controls = view.controls.filter(c => c.action === "RESET" || c.action === "CLOSE_SESSION");
  for (const e of view.events) {
    for (const c of controls.filter(c => c.before_event === e.index)) {
      blocks.push(el("div", {class: "control", text: c.action + " at " + coords(c.source) + ": memory cleared"}));
    }
    const who = e.kind === "DIALOGUE_TURN" ? [e.role, e.speaker].filter(x => x).join(" · ")
        : (e.document_id ? e.document_id + (e.chunk_index === null ? "" : " #" + e.chunk_index) : "");
    blocks.push(el("div", {class: "event", id: "event-" + e.index, "data-event-id": e.event_id},
        el("div", {class: "event-head"},
            el("span", {class: "event-id", text: "#" + e.index + " " + e.event_id}),
            el("span", {class: "muted", text: e.kind.toLowerCase().replace("_", " ") + (who ? " · " + who : "")}),
            el("span", {class: "coords", text: coords(e.source)})),
        el("p", {class: "event-text"}, ...highlighted(e.text, spansOf(e.index, chosen)))));
  }
  if (blocks.length === 0) blocks.push(el("p", {class: "muted", text: "No content events yet."}));
  box.replaceChildren(...blocks);
}

// ---------------------------------------------------------------- page

function render() {
  document.getElementById("counts").textContent = view.events.length + " events · " + view.answers.length
      + " answers · " + view.pending.length + " waiting" + (view.truncated ? " (the newest only; older ones not shown)" : "");
  renderSummary();
  renderAnswers();
  renderMap();
  renderSource();
  document.body.dataset.answers = String(view.answers.length);
}

function show(next) {
  view = next;
  render();
}

function status(text, live) {
  document.getElementById("status").textContent = text;
  document.getElementById("status").className = "status " + live;
  document.body.dataset.live = live;
}

async function load() {
  const r = await fetch(api, {cache: "no-store"});
  if (r.ok) show(await r.json());
  else if (r.status === 404) status("nothing of this session yet", "waiting");
}

function follow() {
  if (!("EventSource" in window)) {
    status("polling", "polling");
    setInterval(load, 2000);
    return;
  }
  const source = new EventSource(api + "/stream");
  source.addEventListener("open", () => status("live", "open"));
  source.addEventListener("error", () => status("reconnecting…", "reconnecting"));
  source.addEventListener("session", ev => {
    status("live · updated " + new Date().toLocaleTimeString(), "open");
    show(JSON.parse(ev.data));
  });
}

document.getElementById("session-id").textContent = sessionId;
document.title = "Engram · " + sessionId;
load().catch(() => status("cannot reach the query app", "reconnecting")).finally(follow);
