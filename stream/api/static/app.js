// twinstream dashboard: ward overview, patient page, live alert feed. No build step.
//
// The API token comes from the sign-in box or ?token= (removed from the address bar
// at once) and is kept in sessionStorage, i.e. for this tab only. Data requests send
// it as a bearer header; the live feed uses EventSource, which cannot set headers,
// so /alerts/stream is the one route that also accepts ?token=.
"use strict";
(() => {
  const $ = (sel) => document.querySelector(sel);
  const POLL_MS = 5000;
  const VITALS = [
    ["heart_rate", "Heart rate (bpm)"],
    ["respiratory_rate", "Respiratory rate (/min)"],
    ["spo2", "SpO\u2082 (%)"],
    ["systolic_bp", "Systolic BP (mmHg)"],
    ["temperature_c", "Temperature (\u00b0C)"],
  ];
  const S = { token: null, es: null, timer: null, feed: new Map(), wards: new Set(), charts: [], chartStamp: "" };

  // ---- helpers -----------------------------------------------------------
  function el(tag, props = {}, ...children) {
    const node = document.createElement(tag);
    for (const [k, v] of Object.entries(props)) {
      if (k === "class") node.className = v;
      else if (k.startsWith("data-")) node.setAttribute(k, v);
      else if (k === "onclick") node.addEventListener("click", v);
      else node[k] = v;
    }
    for (const c of children) node.append(c instanceof Node ? c : document.createTextNode(c ?? ""));
    return node;
  }
  const time = (iso) => (iso ? new Date(iso).toLocaleString() : "\u2013");
  const fmt = (v) => (typeof v === "number" ? String(Math.round(v * 100) / 100) : String(v));

  async function api(path, options = {}) {
    const headers = { Authorization: `Bearer ${S.token}` };
    if (options.body) headers["Content-Type"] = "application/json";
    const r = await fetch(path, { ...options, headers });
    if (r.status === 401) {
      signOut("The token was refused.");
      throw new Error("unauthorized");
    }
    if (!r.ok) throw new Error(`${path}: HTTP ${r.status}`);
    return r.json();
  }

  // ---- sign-in -----------------------------------------------------------
  function readToken() {
    const url = new URL(location.href);
    const fromQuery = url.searchParams.get("token");
    if (fromQuery) {
      sessionStorage.setItem("twinToken", fromQuery);
      url.searchParams.delete("token");
      history.replaceState(null, "", url.pathname + url.search + url.hash);
    }
    return sessionStorage.getItem("twinToken");
  }

  function signOut(message = "") {
    sessionStorage.removeItem("twinToken");
    S.token = null;
    if (S.es) S.es.close();
    clearInterval(S.timer);
    $("#app").hidden = true;
    $("#login").hidden = false;
    $("#login-error").textContent = message;
  }

  function start() {
    $("#login").hidden = true;
    $("#app").hidden = false;
    $("#staff").value = sessionStorage.getItem("twinStaff") || "dashboard";
    connectFeed();
    loadFeed().catch(console.error);
    route();
    S.timer = setInterval(() => route(false), POLL_MS);
  }

  // ---- live alert feed ---------------------------------------------------
  function connectFeed() {
    if (S.es) S.es.close();
    S.es = new EventSource(`/alerts/stream?token=${encodeURIComponent(S.token)}`);
    S.es.onopen = () => ($("#live").className = "live on");
    S.es.onerror = () => ($("#live").className = "live off"); // EventSource reconnects itself
    S.es.addEventListener("alert", (e) => {
      const alert = JSON.parse(e.data);
      upsertAlert(alert);
      renderFeed();
      route(false);
    });
  }

  async function loadFeed() {
    const data = await api("/alerts?status=all&limit=200");
    for (const a of [...data.recent].reverse()) upsertAlert(a);
    for (const a of data.open) if (!S.feed.has(a.alert_id)) upsertAlert({ ...a, observed_at: a.last_firing_at });
    renderFeed();
  }

  function upsertAlert(a) {
    const prev = S.feed.get(a.alert_id);
    S.feed.delete(a.alert_id); // re-insert: newest last
    S.feed.set(a.alert_id, { ...a, acked: prev?.acked || a.acknowledged || false });
  }

  function alertItem(a) {
    const li = el("li", { class: `sev-${a.severity}${a.acked ? " acked" : ""}`, "data-alert-id": a.alert_id });
    if (a.status !== "resolved" && !a.acked) {
      li.append(el("button", { class: "ack", type: "button", onclick: () => acknowledge(a.alert_id) }, "Acknowledge"));
    }
    const gist = a.details?.news2_total !== undefined ? ` \u00b7 NEWS2 ${a.details.news2_total}` : "";
    li.append(
      el("div", {}, el("a", { href: `#/patient/${encodeURIComponent(a.patient_id)}` }, a.patient_id),
        ` ${a.rule} \u00b7 ${a.severity} \u00b7 ${a.status}${gist}`),
      el("div", { class: "meta" }, time(a.observed_at), a.acked ? " \u00b7 acknowledged" : ""),
    );
    return li;
  }

  function renderFeed() {
    const rank = { critical: 4, high: 3, medium: 2, low: 1, info: 0 };
    const items = [...S.feed.values()]
      .sort((a, b) => Date.parse(b.observed_at) - Date.parse(a.observed_at) || rank[b.severity] - rank[a.severity])
      .slice(0, 100);
    $("#feed-list").replaceChildren(...items.map(alertItem));
  }

  async function acknowledge(alertId) {
    const by = $("#staff").value.trim() || "dashboard";
    sessionStorage.setItem("twinStaff", by);
    await api(`/alerts/${encodeURIComponent(alertId)}/ack`, { method: "POST", body: JSON.stringify({ by }) });
    const a = S.feed.get(alertId);
    if (a) a.acked = true;
    renderFeed();
    route(false);
  }

  // ---- ward overview -----------------------------------------------------
  async function showOverview() {
    const ward = $("#ward").value;
    const q = new URLSearchParams({ limit: "500" });
    if (ward) q.set("ward", ward);
    const page = await api(`/twins?${q}`);
    for (const t of page.items) if (t.ward) S.wards.add(t.ward);
    syncWards();
    $("#count").textContent = `${page.total} patients`;
    const rows = page.items.map((t) =>
      el("tr", { class: `band-${t.band}`, "data-patient": t.patient_id, onclick: () => (location.hash = `#/patient/${encodeURIComponent(t.patient_id)}`) },
        el("td", {}, t.patient_id), el("td", {}, t.ward ?? "\u2013"),
        el("td", {}, t.news2_total === null ? "\u2013" : `${t.news2_total}${t.partial ? "+" : ""}`),
        el("td", {}, el("span", { class: `band ${t.band}` }, t.band)),
        el("td", {}, t.qsofa ?? "\u2013"), el("td", {}, t.risk === null ? "\u2013" : fmt(t.risk)),
        el("td", {}, t.open_alerts ? `${t.open_alerts} (${t.top_severity})` : ""),
        el("td", {}, time(t.last_vitals_at))));
    $("#twins tbody").replaceChildren(...rows);
  }

  function syncWards() {
    const select = $("#ward");
    const have = new Set([...select.options].map((o) => o.value));
    for (const w of [...S.wards].sort()) if (!have.has(w)) select.append(el("option", { value: w }, w));
  }

  // ---- patient page ------------------------------------------------------
  async function showPatient(pid, fresh) {
    const id = encodeURIComponent(pid);
    const [twin, vitals] = await Promise.all([api(`/twins/${id}`), api(`/twins/${id}/vitals`)]);
    const news = twin.assessment?.news2;
    $("#p-title").textContent = `${twin.patient_id}${twin.profile?.ward ? ` \u00b7 ward ${twin.profile.ward}` : ""}`;
    $("#p-band").className = `band ${news ? news.band : "unknown"}`;
    $("#p-band").textContent = news ? `NEWS2 ${news.total}${news.partial ? "+" : ""} \u00b7 ${news.band}` : "no vitals";
    $("#p-response").textContent = news ? news.response : "";
    $("#p-latest tbody").replaceChildren(...Object.entries(twin.latest).map(([k, o]) =>
      el("tr", {}, el("td", {}, k), el("td", {}, fmt(o.value)), el("td", { class: "meta" }, time(o.at)))));
    const mine = [...S.feed.values()].filter((a) => a.patient_id === twin.patient_id);
    const open = twin.open_alerts.map((a) => ({ ...a, observed_at: a.last_firing_at, acked: a.acknowledged || S.feed.get(a.alert_id)?.acked }));
    const items = [...open, ...mine.filter((a) => !open.some((o) => o.alert_id === a.alert_id)).reverse()];
    $("#p-alerts").replaceChildren(...items.map(alertItem));
    const stamp = JSON.stringify([vitals, twin.news2_history]);
    if (fresh || stamp !== S.chartStamp) drawCharts(twin, vitals);
    S.chartStamp = stamp;
  }

  function chart(title, xs, series, target) {
    const width = Math.max(320, target.clientWidth || 600);
    const opts = {
      title, width, height: 150, class: "chart",
      scales: { x: { time: true } },
      series: [{}, ...series.map((s) => ({ label: s.label, stroke: s.stroke, dash: s.dash, points: { show: true } }))],
    };
    S.charts.push(new uPlot(opts, [xs, ...series.map((s) => s.values)], target));
  }

  function drawCharts(twin, vitals) {
    S.charts.forEach((c) => c.destroy());
    S.charts = [];
    const box = $("#p-charts");
    box.replaceChildren();
    for (const [name, label] of VITALS) {
      const pts = vitals[name] || [];
      if (!pts.length) continue;
      const div = el("div");
      box.append(div);
      chart(label, pts.map((p) => Date.parse(p.at) / 1000), [
        { label: "mean", stroke: "#1565c0", values: pts.map((p) => p.mean) },
        { label: "min", stroke: "#90a4ae", dash: [4, 4], values: pts.map((p) => p.min) },
        { label: "max", stroke: "#90a4ae", dash: [4, 4], values: pts.map((p) => p.max) },
      ], div);
    }
    const hist = twin.news2_history;
    const target = $("#p-news2");
    target.replaceChildren();
    if (hist.length) {
      chart("NEWS2", hist.map((p) => Date.parse(p.at) / 1000),
        [{ label: "NEWS2", stroke: "#c62828", values: hist.map((p) => p.total) }], target);
    }
  }

  // ---- routing -----------------------------------------------------------
  let current = "";
  function route(fresh = true) {
    if (!S.token) return;
    const m = location.hash.match(/^#\/patient\/(.+)$/);
    const key = m ? `p:${m[1]}` : "overview";
    const changed = key !== current;
    current = key;
    $("#overview-view").hidden = Boolean(m);
    $("#patient-view").hidden = !m;
    const job = m ? showPatient(decodeURIComponent(m[1]), fresh && changed) : showOverview();
    job.catch((e) => console.error(e));
  }

  window.addEventListener("hashchange", () => route(true));
  $("#ward").addEventListener("change", () => route(false));
  $("#logout").addEventListener("click", () => signOut());
  $("#login-form").addEventListener("submit", (e) => {
    e.preventDefault();
    S.token = $("#token").value.trim();
    sessionStorage.setItem("twinToken", S.token);
    start();
  });

  S.token = readToken();
  if (S.token) start();
  else signOut();
})();
