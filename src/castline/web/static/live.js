// Live plant overview: server-sent events from /api/v1/live update the machine tiles.
// Topics follow MQTT: castline/v1/<plant>/<machine>/<verdict|state|shot>.
(function () {
  "use strict";
  const line = document.getElementById("line");
  // Words of the page's language, from <script type="application/json" id="i18n">.
  const source_ = document.getElementById("i18n");
  const words = source_ ? JSON.parse(source_.textContent || "{}") : {};
  const say = (id, fields) =>
    (words[id] || id).replace(/\{(\w+)\}/g, (_, name) => String(fields ? fields[name] : ""));
  const verdictWord = (code) => words[`verdict.${code}`] || code;
  const stateWord = (code) => words[`state.${code}`] || code.replace("_", " ");
  const shotLabel = (n) => `#${Number(n).toLocaleString("en-US")}`;
  const deadline = line ? Number(line.dataset.deadline) : 0;
  // Why the backlog is unknown, as the API says it, and its words (page_context.WHY).
  const WHY = {
    "this dashboard runs without --nats": "line.why.no_nats",
    "no line runtime has started on this broker yet": "line.why.no_runtime",
  };
  function lineText(status) {
    if (status.level === "unknown" || status.waiting === undefined) {
      const reason = (status.text || "").replace(/^Inspection backlog unknown: /, "");
      return say("line.unknown", { reason: WHY[reason] ? say(WHY[reason]) : reason });
    }
    let text = say("line.counts", status);
    if (status.oldest_s !== null && status.oldest_s !== undefined) {
      text += say("line.oldest", { oldest: status.oldest_s.toFixed(1) });
    }
    if (status.level === "behind") text += say("line.behind", { deadline });
    return text;
  }
  const tiles = new Map();
  document.querySelectorAll(".tile").forEach((t) => tiles.set(t.dataset.machine, t));
  const pill = document.getElementById("live");
  if (line) {
    // The backlog lives in JetStream, not in the event stream: read it every 2 s.
    const url = `/api/v1/plants/${encodeURIComponent(line.dataset.plant)}/line`;
    const refresh = async () => {
      try {
        const status = await (await fetch(url, { credentials: "same-origin" })).json();
        line.textContent = lineText(status);
        line.className = `line-status line-${status.level}`;
      } catch (e) { /* the next refresh tries again */ }
    };
    setInterval(refresh, 2000);
  }
  const first = document.querySelector(".tile");
  if (!first) return;

  const field = (tile, name) => tile.querySelector(`[data-field="${name}"]`);
  const counts = (tile) => JSON.parse(field(tile, "counts").textContent || "{}");

  function showYield(tile, c) {
    const total = Object.values(c).reduce((a, b) => a + b, 0);
    field(tile, "yield").textContent =
      total ? `${((100 * (c.OK || 0)) / total).toFixed(1)} %` : "—";
    field(tile, "scrap").textContent =
      total ? `${((100 * (c.NG || 0)) / total).toFixed(1)} %` : "—";
    field(tile, "chips").querySelectorAll(".chip").forEach((chip) => {
      chip.textContent = c[chip.dataset.verdict] || 0;
    });
  }

  function onVerdict(tile, p) {
    const v = field(tile, "verdict");
    v.textContent = verdictWord(p.verdict);
    v.dataset.code = p.verdict;
    v.className = `verdict v-${p.verdict}`;
    v.href = `/plants/${tile.dataset.plant}/parts/${tile.dataset.machine}/${p.shot_number}`;
    if (p.image) {
      const img = field(tile, "image");
      img.src = `/api/v1/blobs/${p.image}`;
      img.hidden = false;
      const none = field(tile, "noimage");
      if (none) none.remove();
    }
    // Count each part once: the retained verdict may be the one the page already shows.
    if (p.shot_number > Number(tile.dataset.lastVerdict)) {
      tile.dataset.lastVerdict = p.shot_number;
      const c = counts(tile);
      c[p.verdict] = (c[p.verdict] || 0) + 1;
      field(tile, "counts").textContent = JSON.stringify(c);
      showYield(tile, c);
    }
    tile.classList.remove("flash-new");
    void tile.offsetWidth;
    tile.classList.add("flash-new");
  }

  function onState(tile, p) {
    const s = field(tile, "state");
    s.textContent = stateWord(p.state);
    s.className = `state s-${p.state}`;
    if (p.die) field(tile, "die").textContent = p.die;
  }

  function onShot(tile, p) {
    field(tile, "shot").textContent = shotLabel(p.shot_number);
    if (p.die) field(tile, "die").textContent = p.die;
    if (p.shot_number > Number(tile.dataset.lastShot)) {
      tile.dataset.lastShot = p.shot_number;
      const n = field(tile, "shots_today");
      n.textContent = Number(n.textContent) + 1;
    }
  }

  // A live alarm: a newly opened one counts on its machine's tile at once (repeats of an
  // open alarm only add to its count on the alarms page). Alarms of the plant as a whole
  // come under the machine id "line", which has no tile.
  function onAlarm(tile, p) {
    if (!p.opened) return;
    const n = field(tile, "alarms");
    if (!n) return;
    n.textContent = Number(n.textContent) + 1;
    n.classList.add("alarm");
    n.title = p.message;
  }

  const handlers = { verdict: onVerdict, state: onState, shot: onShot, alarm: onAlarm };
  const source = new EventSource(`/api/v1/live?plant=${encodeURIComponent(first.dataset.plant)}`);
  source.onopen = () => { pill.textContent = say("live.on"); pill.className = "pill on"; };
  source.onerror = () => { pill.textContent = say("live.off"); pill.className = "pill off"; };
  source.onmessage = (e) => {
    const { topic, payload } = JSON.parse(e.data);
    const [, , , machine, kind] = topic.split("/");
    const tile = tiles.get(machine);
    if (tile && handlers[kind]) handlers[kind](tile, payload);
  };
})();
