/**
 * The dashboard: one self-contained HTML page (inline CSS and JS, hand-written canvas charts, no
 * build step, no CDN). Served by the admin routes behind the admin token. It polls the analytics
 * JSON endpoints relative to its own URL, so it works under any admin prefix.
 *
 * Safety: every value from the API is inserted with `textContent` or `createTextNode`, never as
 * HTML; the page is served with a Content-Security-Policy that allows only this exact script (by
 * hash), no other script, no images, and connections to its own origin only.
 */
import { createHash } from 'node:crypto';

const STYLE = `
body{font:14px system-ui,sans-serif;margin:0;background:#f6f7f9;color:#1d2330}
header{background:#1d2330;color:#fff;padding:10px 16px;display:flex;gap:16px;align-items:center}
header h1{font-size:16px;margin:0}
main{display:grid;grid-template-columns:repeat(auto-fit,minmax(420px,1fr));gap:12px;padding:12px}
section{background:#fff;border:1px solid #dde1e7;border-radius:6px;padding:10px}
h2{font-size:14px;margin:0 0 8px}
table{border-collapse:collapse;width:100%}
table+table{margin-top:10px}
td,th{text-align:left;padding:3px 6px;border-bottom:1px solid #eef0f3;font-variant-numeric:tabular-nums;word-break:break-all}
td.n,th.n{text-align:right}
.big{font-size:22px;font-weight:600}
.lim{color:#c0392b}
canvas{width:100%;height:140px}
button.link{background:none;border:0;color:#2463eb;cursor:pointer;padding:0;font:inherit;text-align:left}
#status{margin-left:auto;font-size:12px;opacity:.8}
`;

const SCRIPT = `
(function () {
  'use strict';
  var windowName = '5m';
  var selected = null;
  function $(id) { return document.getElementById(id); }
  function setText(id, v) { $(id).textContent = String(v); }
  function getJson(path) {
    return fetch(path, { credentials: 'same-origin', cache: 'no-store' }).then(function (r) {
      if (!r.ok) throw new Error(path + ': HTTP ' + r.status);
      return r.json();
    });
  }
  function cell(tr, text, cls) {
    var td = document.createElement('td');
    if (cls) td.className = cls;
    td.textContent = String(text);
    tr.appendChild(td);
    return td;
  }
  function fill(tbodyId, rows, render) {
    var tb = $(tbodyId);
    while (tb.firstChild) tb.removeChild(tb.firstChild);
    if (rows.length === 0) {
      var tr = document.createElement('tr');
      cell(tr, 'none yet').colSpan = 4;
      tb.appendChild(tr);
      return;
    }
    rows.forEach(function (row) {
      var tr = document.createElement('tr');
      render(tr, row);
      tb.appendChild(tr);
    });
  }
  function consumerCell(tr, id) {
    var td = document.createElement('td');
    var b = document.createElement('button');
    b.className = 'link';
    b.type = 'button';
    b.textContent = String(id);
    b.addEventListener('click', function () { selected = String(id); $('consumer-input').value = selected; drill(); });
    td.appendChild(b);
    tr.appendChild(td);
  }
  function pct(u) { return (Math.round(u * 1000) / 10) + ' %'; }

  function chart(canvas, values, color) {
    var dpr = window.devicePixelRatio || 1;
    var w = canvas.clientWidth, h = canvas.clientHeight;
    canvas.width = Math.max(1, Math.floor(w * dpr));
    canvas.height = Math.max(1, Math.floor(h * dpr));
    var g = canvas.getContext('2d');
    g.scale(dpr, dpr);
    g.clearRect(0, 0, w, h);
    var max = 1;
    values.forEach(function (v) { if (v > max) max = v; });
    var left = 40, top = 8, bottom = h - 16, right = w - 4;
    g.strokeStyle = '#ccd2da';
    g.fillStyle = '#5b6575';
    g.font = '11px system-ui,sans-serif';
    g.beginPath(); g.moveTo(left, top); g.lineTo(left, bottom); g.lineTo(right, bottom); g.stroke();
    g.fillText(String(max), 2, top + 8);
    g.fillText('0', 2, bottom);
    g.fillText('-' + values.length + ' s', left, h - 2);
    g.fillText('now', right - 22, h - 2);
    var step = (right - left) / Math.max(1, values.length);
    g.fillStyle = color;
    values.forEach(function (v, i) {
      var bh = (bottom - top) * (v / max);
      g.fillRect(left + i * step + 1, bottom - bh, Math.max(1, step - 2), bh);
    });
  }

  function refreshLive() {
    return getJson('analytics/live?seconds=60').then(function (live) {
      var s = live.seconds;
      // The current second is still filling: show the last complete one as "now".
      var last = s.length > 1 ? s[s.length - 2] : s[s.length - 1] || { total: 0, limited: 0 };
      setText('rps-now', last.total);
      setText('lps-now', last.limited);
      chart($('rps-chart'), s.map(function (x) { return x.total; }), '#2463eb');
      chart($('lps-chart'), s.map(function (x) { return x.limited; }), '#c0392b');
    });
  }

  function refreshSummary() {
    return getJson('analytics/summary?window=' + encodeURIComponent(windowName) + '&top=10').then(function (sum) {
      setText('total', sum.total);
      setText('limited', sum.limited);
      fill('top-consumers', sum.topConsumers, function (tr, r) { consumerCell(tr, r.id); cell(tr, r.count, 'n'); });
      fill('top-ips', sum.topIps, function (tr, r) { cell(tr, r.id); cell(tr, r.count, 'n'); });
      fill('routes', sum.endpoints, function (tr, r) { cell(tr, r.route); cell(tr, r.status, 'n'); cell(tr, r.count, 'n'); });
      fill('near', sum.nearLimit, function (tr, r) { consumerCell(tr, r.consumer); cell(tr, r.policy); cell(tr, pct(r.usage), 'n'); });
    });
  }

  function drill() {
    if (!selected) return Promise.resolve();
    var id = selected;
    return getJson('analytics/consumers/' + encodeURIComponent(id) + '?window=' + encodeURIComponent(windowName)).then(function (d) {
      if (id !== selected) return;
      setText('drill-name', d.consumer);
      setText('drill-total', d.total);
      setText('drill-limited', d.limited);
      fill('drill-routes', d.endpoints, function (tr, r) { cell(tr, r.route); cell(tr, r.status, 'n'); cell(tr, r.count, 'n'); });
      fill('drill-near', d.nearLimit, function (tr, r) { cell(tr, r.policy); cell(tr, pct(r.usage), 'n'); });
    });
  }

  function tick() {
    Promise.all([refreshLive(), refreshSummary(), drill()]).then(function () {
      setText('status', 'updated ' + new Date().toLocaleTimeString());
      document.body.setAttribute('data-updated', String(Date.now()));
    }, function (err) {
      setText('status', 'error: ' + (err && err.message ? err.message : String(err)));
    });
  }

  $('window').addEventListener('change', function (e) { windowName = e.target.value; tick(); });
  $('consumer-form').addEventListener('submit', function (e) {
    e.preventDefault();
    selected = $('consumer-input').value || null;
    drill();
  });
  tick();
  setInterval(tick, 1000);
})();
`;

const BODY = `
<header><h1>Sluice</h1>
<label>window <select id="window"><option value="5m">5 min</option><option value="1h">1 hour</option><option value="24h">24 hours</option></select></label>
<span id="status">loading…</span></header>
<main>
<section><h2>Requests / s <span class="big" id="rps-now">0</span></h2><canvas id="rps-chart"></canvas></section>
<section><h2>429s / s <span class="big lim" id="lps-now">0</span></h2><canvas id="lps-chart"></canvas></section>
<section><h2>In window</h2><div>requests <span class="big" id="total">0</span> · 429s <span class="big lim" id="limited">0</span></div></section>
<section><h2>Top noisy neighbours (429s by consumer)</h2><table><thead><tr><th>consumer</th><th class="n">429s</th></tr></thead><tbody id="top-consumers"></tbody></table></section>
<section><h2>Top IPs (429s)</h2><table><thead><tr><th>ip</th><th class="n">429s</th></tr></thead><tbody id="top-ips"></tbody></table></section>
<section><h2>Routes</h2><table><thead><tr><th>route</th><th class="n">status</th><th class="n">calls</th></tr></thead><tbody id="routes"></tbody></table></section>
<section><h2>Close to their limit</h2><table><thead><tr><th>consumer</th><th>policy</th><th class="n">peak use</th></tr></thead><tbody id="near"></tbody></table></section>
<section><h2>Consumer drill-down</h2>
<form id="consumer-form"><input id="consumer-input" placeholder="consumer, key or IP" autocomplete="off"> <button type="submit">show</button></form>
<p><b id="drill-name"></b> requests <span id="drill-total">–</span> · 429s <span id="drill-limited" class="lim">–</span></p>
<table><thead><tr><th>route</th><th class="n">status</th><th class="n">calls</th></tr></thead><tbody id="drill-routes"></tbody></table>
<table><thead><tr><th>policy</th><th class="n">peak use</th></tr></thead><tbody id="drill-near"></tbody></table>
</section>
</main>`;

/** The page's HTML. */
export const DASHBOARD_HTML =
  `<!doctype html><html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width,initial-scale=1">` +
  `<title>Sluice dashboard</title><style>${STYLE}</style></head><body>${BODY}<script>${SCRIPT}</script></body></html>`;

/** The Content-Security-Policy the page is served with: only its own script runs. */
export const DASHBOARD_CSP =
  `default-src 'none'; script-src 'sha256-${createHash('sha256').update(SCRIPT).digest('base64')}'; ` +
  `style-src 'unsafe-inline'; connect-src 'self'; img-src 'none'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'`;
