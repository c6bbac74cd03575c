/* Magpie dashboard: polls the /v1 API of `magpie serve` and renders statistics, the model, recommendations and a
 * live event-rate chart. Plain browser JavaScript, no dependencies, no build step, no external resources.
 * Every value from the server is written with textContent (never as HTML). */
(function () {
  'use strict';

  var KEY_STORAGE = 'magpie.apiKey';
  var USER_STORAGE = 'magpie.lastUser';
  var STATS_EVERY_MS = 1500;
  var MODEL_EVERY_MS = 5000;
  var READY_EVERY_MS = 5000;
  var REQUEST_TIMEOUT_MS = 8000;

  function $(id) { return document.getElementById(id); }

  /* ---------------- storage (localStorage may be unavailable: private mode, file://) ---------------- */
  function storageGet(k) {
    try { return window.localStorage.getItem(k) || ''; } catch (e) { return ''; }
  }
  function storageSet(k, v) {
    try {
      if (v) window.localStorage.setItem(k, v); else window.localStorage.removeItem(k);
      return true;
    } catch (e) { return false; }
  }

  /* ---------------- API ---------------- */
  function ApiError(status, code, message, field) {
    this.status = status;
    this.code = code;
    this.message = message;
    this.field = field || null;
  }
  ApiError.prototype.toString = function () {
    var s = (this.status ? this.status + ' ' : '') + this.code + ': ' + this.message;
    if (this.status === 401) s += ' (enter an API key at the top right)';
    if (this.status === 403) s += ' (this key may only read; a write key is needed)';
    return s;
  };

  /* api('GET', '/v1/stats') -> Promise of the parsed JSON body; rejects with ApiError for any non-2xx answer,
   * a network failure, a timeout or a body that is not JSON. */
  function api(method, path, body) {
    var headers = { 'Accept': 'application/json' };
    var key = storageGet(KEY_STORAGE);
    if (key) headers['X-API-Key'] = key;
    var opts = { method: method, headers: headers, cache: 'no-store' };
    if (body !== undefined) {
      headers['Content-Type'] = 'application/json';
      opts.body = JSON.stringify(body);
    }
    var ctl = typeof AbortController === 'function' ? new AbortController() : null;
    var timer = null;
    if (ctl) {
      opts.signal = ctl.signal;
      timer = setTimeout(function () { ctl.abort(); }, REQUEST_TIMEOUT_MS);
    }
    return fetch(path, opts).then(function (resp) {
      return resp.text().then(function (text) {
        if (timer) clearTimeout(timer);
        var data = null;
        try { data = text ? JSON.parse(text) : null; } catch (e) { data = undefined; }
        if (!resp.ok) {
          var err = data && data.error;
          if (err && typeof err === 'object') {
            throw new ApiError(resp.status, err.code || 'error', err.message || resp.statusText, err.field);
          }
          throw new ApiError(resp.status, 'http_' + resp.status,
                             (text || resp.statusText || 'no message').slice(0, 300));
        }
        if (data === undefined) {
          throw new ApiError(resp.status, 'bad_response', method + ' ' + path + ' answered something that is not JSON');
        }
        return data;
      });
    }, function (e) {
      if (timer) clearTimeout(timer);
      if (e && e.name === 'AbortError') {
        throw new ApiError(0, 'timeout', method + ' ' + path + ' took longer than ' + REQUEST_TIMEOUT_MS / 1000 + ' s');
      }
      throw new ApiError(0, 'network', 'cannot reach the server (' + (e && e.message ? e.message : e) + ')');
    });
  }

  /* ---------------- error banner: one line per failing area, cleared when that area succeeds again ---------- */
  var errors = {};        // area -> message
  var dismissed = '';     // banner text the user dismissed (shown again when it changes)

  function setError(area, err) {
    if (err === null || err === undefined) delete errors[area];
    else errors[area] = area + ': ' + String(err);
    renderErrors();
  }
  function renderErrors() {
    var lines = Object.keys(errors).sort().map(function (k) { return errors[k]; });
    var text = lines.join(' \u2022 ');
    var banner = $('error');
    $('error-text').textContent = text;
    banner.hidden = !text || text === dismissed;
    if (!text) dismissed = '';
  }

  /* ---------------- formatting ---------------- */
  function fmtInt(n) {
    if (typeof n !== 'number' || !isFinite(n)) return '\u2013';
    return Math.round(n).toLocaleString('en-US');
  }
  function fmtRate(r) {
    if (typeof r !== 'number' || !isFinite(r)) return '\u2013';
    if (r >= 100 || r === Math.round(r)) return Math.round(r).toLocaleString('en-US');
    return r.toFixed(1);
  }
  function fmtTime(ts) {
    if (typeof ts !== 'number' || !isFinite(ts) || ts <= 0) return '\u2013';
    var d = new Date(ts * 1000);
    if (isNaN(d.getTime())) return String(ts);
    return d.toISOString().replace('T', ' ').slice(0, 19) + ' UTC';
  }
  function fmtDuration(s) {
    if (typeof s !== 'number' || !isFinite(s)) return '\u2013';
    s = Math.max(0, Math.floor(s));
    var d = Math.floor(s / 86400), h = Math.floor(s / 3600) % 24, m = Math.floor(s / 60) % 60, sec = s % 60;
    function p(x) { return (x < 10 ? '0' : '') + x; }
    if (d) return d + 'd ' + h + 'h ' + p(m) + 'm';
    if (h) return h + 'h ' + p(m) + 'm ' + p(sec) + 's';
    if (m) return m + 'm ' + p(sec) + 's';
    return sec + 's';
  }
  function fmtMetric(v) {
    if (typeof v === 'number') {
      if (v === Math.round(v) && Math.abs(v) >= 1) return v.toLocaleString('en-US');
      return v.toFixed(4);
    }
    if (v === null || v === undefined) return '\u2013';
    if (typeof v === 'object') return JSON.stringify(v);
    return String(v);
  }

  function setNum(id, n) {
    var el = $(id);
    el.textContent = fmtInt(n);
    el.setAttribute('data-value', typeof n === 'number' ? String(n) : '');
  }
  function el(tag, cls, text) {
    var e = document.createElement(tag);
    if (cls) e.className = cls;
    if (text !== undefined && text !== null) e.textContent = String(text);
    return e;
  }
  function clear(node) { while (node.firstChild) node.removeChild(node.firstChild); }

  /* ---------------- readiness ---------------- */
  function pollReady() {
    fetch('/readyz', { cache: 'no-store' }).then(function (resp) {
      return resp.json().catch(function () { return {}; }).then(function (body) {
        var st = $('server-status');
        if (resp.ok) {
          st.setAttribute('data-state', 'ready');
          $('server-status-text').textContent = 'ready' +
            (body && body.model_version !== undefined ? ' \u00b7 model v' + body.model_version : '');
        } else {
          st.setAttribute('data-state', 'not-ready');
          $('server-status-text').textContent = 'not ready (' + resp.status + ')';
        }
      });
    }, function () {
      $('server-status').setAttribute('data-state', 'down');
      $('server-status-text').textContent = 'server unreachable';
    }).then(function () { setTimeout(pollReady, READY_EVERY_MS); });
  }

  /* ---------------- statistics + event rate ---------------- */
  var lastRate = [];

  function renderStats(s) {
    setNum('stat-users', s.users);
    setNum('stat-items', s.items);
    setNum('stat-available-items', s.available_items);
    setNum('stat-events', s.events);
    setNum('stat-categories', s.categories);
    setNum('stat-events-ingested', s.events_ingested);
    setNum('stat-events-duplicates', s.events_duplicates);
    setNum('stat-users-forgotten', s.users_forgotten);
    var up = $('stat-uptime');
    up.textContent = fmtDuration(s.uptime_seconds);
    up.setAttribute('data-value', String(s.uptime_seconds));
    $('stat-ts-min').textContent = fmtTime(s.ts_min);
    $('stat-ts-max').textContent = fmtTime(s.ts_max);

    var tbody = $('stat-per-type').tBodies[0];
    clear(tbody);
    var pt = s.per_type || {};
    var types = Object.keys(pt);
    var total = 0, max = 0;
    types.forEach(function (t) { total += pt[t]; max = Math.max(max, pt[t]); });
    types.sort(function (a, b) { return pt[b] - pt[a] || (a < b ? -1 : 1); });
    types.forEach(function (t) {
      var tr = el('tr');
      tr.setAttribute('data-type', t);
      tr.appendChild(el('td', null, t));
      var num = el('td', 'num', fmtInt(pt[t]));
      num.setAttribute('data-value', String(pt[t]));
      tr.appendChild(num);
      var barCell = el('td', 'bar-col');
      var bar = el('div', 'bar');
      bar.style.width = (max ? (100 * pt[t] / max) : 0).toFixed(1) + '%';
      bar.title = total ? (100 * pt[t] / total).toFixed(1) + '% of events' : '';
      barCell.appendChild(bar);
      tr.appendChild(barCell);
      tbody.appendChild(tr);
    });
    if (!types.length) {
      var tr0 = el('tr');
      var td0 = el('td', 'muted', 'no events yet');
      td0.colSpan = 3;
      tr0.appendChild(td0);
      tbody.appendChild(tr0);
    }

    lastRate = Array.isArray(s.event_rate) ? s.event_rate.slice() : [];
    var sum = 0, peak = 0;
    lastRate.forEach(function (r) { sum += r; peak = Math.max(peak, r); });
    $('rate-now').textContent = fmtRate(lastRate.length ? lastRate[lastRate.length - 1] : 0);
    $('rate-peak').textContent = fmtRate(peak);
    $('rate-total').textContent = fmtInt(sum);
    drawRateChart();
    $('stats-updated').textContent = 'updated ' + new Date().toLocaleTimeString();
  }

  function pollStats() {
    api('GET', '/v1/stats').then(function (s) {
      renderStats(s);
      setError('stats', null);
    }, function (e) {
      setError('stats', e);
    }).then(function () { setTimeout(pollStats, STATS_EVERY_MS); });
  }

  /* A "nice" upper bound for the y axis (1, 2, 2.5, 5 times a power of ten) at or above v. */
  function niceCeil(v) {
    if (!(v > 0)) return 1;
    var p = Math.pow(10, Math.floor(Math.log10(v)));
    var steps = [1, 2, 2.5, 5, 10];
    for (var i = 0; i < steps.length; i++) if (steps[i] * p >= v) return steps[i] * p;
    return 10 * p;
  }

  function drawRateChart() {
    var canvas = $('rate-chart');
    var dpr = window.devicePixelRatio || 1;
    var cssW = canvas.clientWidth || 800, cssH = canvas.clientHeight || 240;
    if (canvas.width !== Math.round(cssW * dpr) || canvas.height !== Math.round(cssH * dpr)) {
      canvas.width = Math.round(cssW * dpr);
      canvas.height = Math.round(cssH * dpr);
    }
    var ctx = canvas.getContext('2d');
    ctx.setTransform(dpr, 0, 0, dpr, 0, 0);
    ctx.clearRect(0, 0, cssW, cssH);

    var padL = 58, padR = 16, padT = 14, padB = 40;
    var w = cssW - padL - padR, h = cssH - padT - padB;
    var data = lastRate;
    var window_s = Math.max(120, data.length);
    var maxv = 0;
    data.forEach(function (r) { maxv = Math.max(maxv, r); });
    var top = niceCeil(maxv);

    ctx.font = '11px system-ui, sans-serif';
    ctx.lineWidth = 1;

    // grid + y ticks
    var nY = 4;
    ctx.textAlign = 'right';
    ctx.textBaseline = 'middle';
    for (var i = 0; i <= nY; i++) {
      var yv = top * i / nY;
      var y = padT + h - h * i / nY;
      ctx.strokeStyle = i === 0 ? '#9aa5b8' : '#e2e6ee';
      ctx.beginPath();
      ctx.moveTo(padL, Math.round(y) + 0.5);
      ctx.lineTo(padL + w, Math.round(y) + 0.5);
      ctx.stroke();
      ctx.fillStyle = '#6b7587';
      ctx.fillText(fmtRate(yv), padL - 8, y);
    }
    // x ticks: every 20 s, "now" at the right
    ctx.textAlign = 'center';
    ctx.textBaseline = 'top';
    for (var t = 0; t <= window_s; t += 20) {
      var x = padL + w - w * t / window_s;
      ctx.strokeStyle = '#9aa5b8';
      ctx.beginPath();
      ctx.moveTo(Math.round(x) + 0.5, padT + h);
      ctx.lineTo(Math.round(x) + 0.5, padT + h + 4);
      ctx.stroke();
      ctx.fillStyle = '#6b7587';
      ctx.fillText(t === 0 ? 'now' : '-' + t + 's', x, padT + h + 6);
    }
    // y axis line
    ctx.strokeStyle = '#9aa5b8';
    ctx.beginPath();
    ctx.moveTo(padL + 0.5, padT);
    ctx.lineTo(padL + 0.5, padT + h);
    ctx.stroke();
    // axis labels
    ctx.fillStyle = '#1d2430';
    ctx.font = '12px system-ui, sans-serif';
    ctx.textAlign = 'center';
    ctx.textBaseline = 'bottom';
    ctx.fillText('seconds ago', padL + w / 2, cssH - 2);
    ctx.save();
    ctx.translate(14, padT + h / 2);
    ctx.rotate(-Math.PI / 2);
    ctx.textBaseline = 'middle';
    ctx.fillText('events / s', 0, 0);
    ctx.restore();

    if (!data.length) {
      ctx.fillStyle = '#6b7587';
      ctx.textAlign = 'center';
      ctx.textBaseline = 'middle';
      ctx.fillText('waiting for data\u2026', padL + w / 2, padT + h / 2);
      return;
    }
    // the series: oldest first, the last sample is "now"
    function px(k) { return padL + w - w * (data.length - 1 - k) / window_s; }
    function py(v) { return padT + h - h * Math.min(v, top) / top; }
    var grad = ctx.createLinearGradient(0, padT, 0, padT + h);
    grad.addColorStop(0, 'rgba(47, 111, 223, 0.35)');
    grad.addColorStop(1, 'rgba(47, 111, 223, 0.02)');
    ctx.beginPath();
    ctx.moveTo(px(0), padT + h);
    for (var k = 0; k < data.length; k++) ctx.lineTo(px(k), py(data[k]));
    ctx.lineTo(px(data.length - 1), padT + h);
    ctx.closePath();
    ctx.fillStyle = grad;
    ctx.fill();
    ctx.beginPath();
    for (var j = 0; j < data.length; j++) {
      if (j === 0) ctx.moveTo(px(j), py(data[j])); else ctx.lineTo(px(j), py(data[j]));
    }
    ctx.strokeStyle = '#2f6fdf';
    ctx.lineWidth = 2;
    ctx.lineJoin = 'round';
    ctx.stroke();
    // last point
    ctx.fillStyle = '#2f6fdf';
    ctx.beginPath();
    ctx.arc(px(data.length - 1), py(data[data.length - 1]), 3, 0, 2 * Math.PI);
    ctx.fill();
  }

  /* ---------------- model ---------------- */
  var seenVersions = {}; // "version|loaded_at|checksum" -> true

  function flatten(prefix, obj, out) {
    Object.keys(obj).forEach(function (k) {
      var v = obj[k], name = prefix ? prefix + ' ' + k : k;
      if (v && typeof v === 'object' && !Array.isArray(v)) flatten(name, v, out);
      else out.push([name, v]);
    });
    return out;
  }

  function renderModel(m) {
    $('model-name').textContent = m.name || '\u2013';
    $('model-version').textContent = m.version !== undefined ? String(m.version) : '\u2013';
    $('model-loaded-at').textContent = fmtTime(m.loaded_at);
    $('model-items').textContent = fmtInt(m.items);
    $('model-index').textContent = m.index ? 'HNSW (built in ' + fmtMetric(m.index_seconds) + ' s)' : 'none (exact scoring)';
    $('model-path').textContent = m.path || '(built-in popularity)';
    $('model-checksum').textContent = m.checksum || '\u2013';

    var meta = m.meta && typeof m.meta === 'object' ? m.meta : null;
    var tbody = $('model-metrics').tBodies[0];
    clear(tbody);
    var metrics = meta && meta.metrics && typeof meta.metrics === 'object' ? flatten('', meta.metrics, []) : [];
    metrics.forEach(function (kv) {
      var tr = el('tr');
      tr.setAttribute('data-metric', kv[0]);
      tr.appendChild(el('td', null, kv[0]));
      tr.appendChild(el('td', 'num', fmtMetric(kv[1])));
      tbody.appendChild(tr);
    });
    $('model-metrics').hidden = !metrics.length;
    $('model-metrics-empty').hidden = metrics.length > 0;

    var dl = $('model-meta');
    clear(dl);
    if (meta) {
      Object.keys(meta).forEach(function (k) {
        if (k === 'metrics') return;
        var v = meta[k], text;
        if (v && typeof v === 'object' && !Array.isArray(v)) {
          text = Object.keys(v).map(function (p) { return p + '=' + fmtMetric(v[p]); }).join(', ') || 'defaults';
        } else if (Array.isArray(v)) {
          text = v.length ? v.map(function (x) { return typeof x === 'object' ? JSON.stringify(x) : String(x); }).join(', ')
                          : (k === 'params' ? 'defaults' : 'none');
        } else if (typeof v === 'number' && /(^|_)(at|time|ts)$/.test(k) && v > 1e9) {
          text = fmtTime(v);
        } else {
          text = fmtMetric(v);
        }
        dl.appendChild(el('dt', null, k.replace(/_/g, ' ')));
        dl.appendChild(el('dd', 'mono', text || '\u2013'));
      });
    } else {
      dl.appendChild(el('dt', null, 'meta'));
      dl.appendChild(el('dd', 'muted', 'none recorded'));
    }

    var key = [m.version, m.loaded_at, m.checksum].join('|');
    if (!seenVersions[key]) {
      var first = Object.keys(seenVersions).length === 0;
      seenVersions[key] = true;
      var vb = $('model-versions').tBodies[0];
      Array.prototype.forEach.call(vb.rows, function (r) { r.classList.remove('new'); });
      var tr = el('tr', first ? null : 'new');
      tr.setAttribute('data-version', String(m.version));
      tr.appendChild(el('td', null, m.version));
      tr.appendChild(el('td', null, m.name));
      tr.appendChild(el('td', null, fmtTime(m.loaded_at)));
      tr.appendChild(el('td', null, fmtInt(m.items)));
      tr.appendChild(el('td', 'mono', m.checksum ? String(m.checksum).slice(0, 10) : '\u2013'));
      tr.appendChild(el('td', null, new Date().toLocaleTimeString()));
      vb.insertBefore(tr, vb.firstChild);
    }
  }

  function loadModel() {
    return api('GET', '/v1/model').then(function (m) {
      renderModel(m);
      setError('model', null);
    }, function (e) {
      setError('model', e);
    });
  }
  function pollModel() {
    loadModel().then(function () { setTimeout(pollModel, MODEL_EVERY_MS); });
  }

  function reloadModel() {
    var btn = $('model-reload');
    btn.disabled = true;
    api('POST', '/v1/admin/reload', {}).then(function (r) {
      if (r && r.model) renderModel(r.model);
      setError('reload', null);
      return loadModel();
    }, function (e) {
      setError('reload', e);
    }).then(function () { btn.disabled = false; });
  }

  /* ---------------- recommendations + history ---------------- */
  function showInline(id, err) {
    var box = $(id);
    clear(box);
    if (!err) { box.hidden = true; return; }
    if (err instanceof ApiError && err.code) {
      box.appendChild(el('span', 'code', (err.status ? err.status + ' ' : '') + err.code));
      var msg = err.message;
      if (err.status === 401) msg += ' \u2014 enter an API key at the top right';
      box.appendChild(document.createTextNode(msg));
    } else {
      box.appendChild(document.createTextNode(String(err)));
    }
    box.hidden = false;
  }

  function renderRecs(r) {
    var list = $('rec-list');
    clear(list);
    var items = Array.isArray(r.items) ? r.items : [];
    items.forEach(function (it) {
      var li = el('li');
      li.setAttribute('data-item', it.item);
      var head = el('div', 'rec-head');
      head.appendChild(el('span', 'rec-title', it.title || it.item));
      head.appendChild(el('span', 'rec-item', it.item));
      li.appendChild(head);
      li.appendChild(el('span', 'rec-score', typeof it.score === 'number' ? it.score.toFixed(4) : '\u2013'));
      li.appendChild(el('div', 'rec-category', it.category || 'no category'));
      li.appendChild(el('div', 'rec-reason', it.reason || ''));
      list.appendChild(li);
    });
    if (!items.length) list.appendChild(el('p', 'rec-empty', 'no items to recommend'));
    var meta = $('rec-meta');
    clear(meta);
    meta.appendChild(document.createTextNode(
      items.length + ' items for ' + r.user + ' from model ' + r.model + ' v' + r.model_version +
      ' \u00b7 history of ' + fmtInt(r.history) + ' events'));
    if (r.fallback) meta.appendChild(el('span', 'tag', 'fallback: popular items'));
  }

  function renderHistory(h) {
    var tbody = $('hist-list');
    clear(tbody);
    var evs = Array.isArray(h.events) ? h.events : [];
    $('hist-total').textContent = '(' + evs.length + ' of ' + fmtInt(h.total) + ')';
    evs.forEach(function (e) {
      var tr = el('tr');
      tr.setAttribute('data-item', e.item);
      tr.appendChild(el('td', 'mono', e.item));
      tr.appendChild(el('td', null, e.type));
      tr.appendChild(el('td', null, fmtTime(e.ts)));
      tr.appendChild(el('td', 'num', e.value !== undefined && e.value !== null ? fmtMetric(e.value) : ''));
      tbody.appendChild(tr);
    });
    if (!evs.length) {
      var tr0 = el('tr');
      var td0 = el('td', 'muted', 'no events');
      td0.colSpan = 4;
      tr0.appendChild(td0);
      tbody.appendChild(tr0);
    }
  }

  function recommend(ev) {
    if (ev) ev.preventDefault();
    var user = $('rec-user').value.trim();
    var n = parseInt($('rec-n').value, 10);
    var category = $('rec-category').value.trim();
    if (!user) { showInline('rec-error', 'enter a user id'); return; }
    if (!(n >= 1)) { showInline('rec-error', 'n must be a whole number of at least 1'); return; }
    storageSet(USER_STORAGE, user);
    var btn = $('rec-go');
    btn.disabled = true;
    $('rec-card').setAttribute('data-state', 'loading');
    var q = '?n=' + n + '&explain=1' + (category ? '&category=' + encodeURIComponent(category) : '');
    var uid = encodeURIComponent(user);
    var pRec = api('GET', '/v1/recommend/' + uid + q).then(function (r) {
      showInline('rec-error', null);
      renderRecs(r);
      return null;
    }, function (e) {
      clear($('rec-list'));
      $('rec-meta').textContent = '';
      showInline('rec-error', e);
      return e;
    });
    var pHist = api('GET', '/v1/users/' + uid + '/history?n=20').then(function (h) {
      showInline('hist-error', null);
      renderHistory(h);
      return null;
    }, function (e) { return e; });
    Promise.all([pRec, pHist]).then(function (res) {
      var recErr = res[0], histErr = res[1];
      if (histErr) {
        clear($('hist-list'));
        $('hist-total').textContent = '';
        // the same 404 is already shown above for the recommendations: do not repeat it
        if (recErr && recErr.status === histErr.status) showInline('hist-error', null);
        else showInline('hist-error', histErr);
      }
      btn.disabled = false;
      $('rec-card').setAttribute('data-state', recErr ? 'error' : 'done');
    });
  }

  /* ---------------- API key ---------------- */
  function renderKeyState() {
    var k = storageGet(KEY_STORAGE);
    $('api-key-state').textContent = k ? 'key set' : 'no key';
  }

  function refreshAll() {
    loadModel();
    api('GET', '/v1/stats').then(function (s) { renderStats(s); setError('stats', null); },
                                 function (e) { setError('stats', e); });
  }

  function init() {
    $('api-key').value = storageGet(KEY_STORAGE);
    renderKeyState();
    $('key-form').addEventListener('submit', function (ev) {
      ev.preventDefault();
      if (!storageSet(KEY_STORAGE, $('api-key').value.trim())) {
        setError('api key', 'the browser refused to store the key (localStorage unavailable)');
      }
      renderKeyState();
      refreshAll();
    });
    $('api-key-clear').addEventListener('click', function () {
      $('api-key').value = '';
      storageSet(KEY_STORAGE, '');
      renderKeyState();
      refreshAll();
    });
    $('error-dismiss').addEventListener('click', function () {
      dismissed = $('error-text').textContent;
      $('error').hidden = true;
    });
    $('rec-form').addEventListener('submit', recommend);
    $('model-reload').addEventListener('click', reloadModel);
    $('rec-user').value = storageGet(USER_STORAGE);
    window.addEventListener('resize', drawRateChart);
    drawRateChart();
    pollReady();
    pollStats();
    pollModel();
  }

  if (document.readyState === 'loading') document.addEventListener('DOMContentLoaded', init);
  else init();
})();
