// Browser test of the `magpie serve` dashboard: headless Debian Chromium driven by playwright-core.
// It starts no server: it is given one (tests/cli/dashboard.sh starts it).
//
//   node dashboard.test.mjs --url http://127.0.0.1:PORT --user USER [--n 5] [--screenshot out.png]
//                           [--auth-url http://127.0.0.1:PORT2 --auth-key KEY]
// or the same through MAGPIE_URL, MAGPIE_USER, MAGPIE_N, MAGPIE_SCREENSHOT, MAGPIE_AUTH_URL, MAGPIE_AUTH_KEY.
// Either URL may be given alone; with both, one browser runs both parts (each origin has its own localStorage).
//
// --url (a server without keys): the stats shown equal GET /v1/stats, the model name and version are
// shown, the user's recommendations appear with reasons (same items as the API), the history is shown, an
// unknown user shows the server's 404 message, events posted make the rate chart draw its line, a model reload
// adds a row to the versions table, the screenshot is a real, non-uniform PNG.
// --auth-url (a server started with keys, --auth-key one of them): without a key the page shows the 401 error; after the key is
// entered (and stored in localStorage) the stats load and the error goes away, also after a page reload.
//
// Exit status 0 when every check passes; 1 with "FAIL: ..." lines otherwise.

import { chromium } from 'playwright-core';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import zlib from 'node:zlib';

// ---------------------------------------------------------------- arguments
function parseArgs(argv) {
  const out = {};
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    if (!a.startsWith('--')) throw new Error(`unexpected argument "${a}"`);
    const eq = a.indexOf('=');
    if (eq > 0) out[a.slice(2, eq)] = a.slice(eq + 1);
    else if (a === '--headed') out[a.slice(2)] = '1';
    else out[a.slice(2)] = argv[++i];
  }
  return out;
}
const args = parseArgs(process.argv.slice(2));
const BASE = (args.url || process.env.MAGPIE_URL || '').replace(/\/+$/, '');
const USER = args.user || process.env.MAGPIE_USER || '';
const N = parseInt(args.n || process.env.MAGPIE_N || '5', 10);
const SHOT = args.screenshot || process.env.MAGPIE_SCREENSHOT || '';
const AUTH_BASE = (args['auth-url'] || process.env.MAGPIE_AUTH_URL || '').replace(/\/+$/, '');
const AUTH_KEY = args['auth-key'] || process.env.MAGPIE_AUTH_KEY || '';
const CHROMIUM = args.chromium || process.env.CHROMIUM || '/usr/bin/chromium';
if (!BASE && !AUTH_BASE) {
  console.error('usage: node dashboard.test.mjs --url http://127.0.0.1:PORT --user USER [--n 5] ' +
                '[--screenshot out.png] [--auth-url http://127.0.0.1:PORT2 --auth-key KEY]   (or MAGPIE_URL, ...)');
  process.exit(2);
}
if (AUTH_BASE && !AUTH_KEY) {
  console.error('dashboard.test.mjs: --auth-url needs --auth-key (a key that server accepts)');
  process.exit(2);
}
if (BASE && !USER) {
  console.error('dashboard.test.mjs: --user (a user id known to the server) is required');
  process.exit(2);
}

// ---------------------------------------------------------------- helpers
let failures = 0;
function check(cond, what) {
  if (cond) {
    console.log(`ok   ${what}`);
  } else {
    failures++;
    console.log(`FAIL: ${what}`);
  }
  return cond;
}
const T0 = Date.now();
function step(what) { console.log(`--   ${what} (${((Date.now() - T0) / 1000).toFixed(1)} s)`); }

// The server under test now: { base, key } (the open server, then the one with keys).
let srv = { base: BASE, key: '' };

async function api(method, p, body) {
  const headers = { Accept: 'application/json' };
  if (srv.key) headers['X-API-Key'] = srv.key;
  if (body !== undefined) headers['Content-Type'] = 'application/json';
  const resp = await fetch(srv.base + p, { method, headers, body: body === undefined ? undefined : JSON.stringify(body) });
  const text = await resp.text();
  let json;
  try { json = JSON.parse(text); } catch { throw new Error(`${method} ${p}: not JSON (${resp.status}): ${text.slice(0, 200)}`); }
  if (!resp.ok) throw new Error(`${method} ${p}: ${resp.status} ${text.slice(0, 300)}`);
  return json;
}

// Polls fn() until it returns a truthy value or the time runs out; returns the last value.
async function until(fn, ms = 8000, every = 150) {
  const end = Date.now() + ms;
  let v;
  for (;;) {
    v = await fn();
    if (v || Date.now() > end) return v;
    await new Promise((r) => setTimeout(r, every));
  }
}

// Decodes an 8-bit RGB / RGBA (non-interlaced) PNG: { width, height, channels, pixels }. Throws on anything else,
// on a bad signature or a CRC-less truncation; Chromium's screenshots are of this kind.
function decodePng(buf) {
  const sig = Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]);
  if (buf.length < 33 || !buf.subarray(0, 8).equals(sig)) throw new Error('not a PNG (bad signature)');
  let off = 8, width = 0, height = 0, depth = 0, ctype = 0, interlace = 0, sawEnd = false;
  const idat = [];
  while (off + 8 <= buf.length) {
    const len = buf.readUInt32BE(off);
    const type = buf.toString('latin1', off + 4, off + 8);
    if (off + 12 + len > buf.length) throw new Error(`PNG truncated in chunk ${type}`);
    const data = buf.subarray(off + 8, off + 8 + len);
    if (type === 'IHDR') {
      width = data.readUInt32BE(0); height = data.readUInt32BE(4);
      depth = data[8]; ctype = data[9]; interlace = data[12];
    } else if (type === 'IDAT') {
      idat.push(data);
    } else if (type === 'IEND') {
      sawEnd = true;
      break;
    }
    off += 12 + len;
  }
  if (!sawEnd) throw new Error('PNG has no IEND chunk');
  if (depth !== 8 || (ctype !== 2 && ctype !== 6) || interlace !== 0) {
    throw new Error(`PNG kind not handled by this check: depth ${depth}, colour type ${ctype}, interlace ${interlace}`);
  }
  const ch = ctype === 6 ? 4 : 3;
  const raw = zlib.inflateSync(Buffer.concat(idat));
  const stride = width * ch;
  if (raw.length !== height * (stride + 1)) throw new Error(`PNG data is ${raw.length} bytes, expected ${height * (stride + 1)}`);
  const px = Buffer.alloc(height * stride);
  for (let y = 0; y < height; y++) {
    const f = raw[y * (stride + 1)];
    const src = raw.subarray(y * (stride + 1) + 1, (y + 1) * (stride + 1));
    const row = px.subarray(y * stride, (y + 1) * stride);
    const prev = y ? px.subarray((y - 1) * stride, y * stride) : null;
    for (let x = 0; x < stride; x++) {
      const a = x >= ch ? row[x - ch] : 0, b = prev ? prev[x] : 0, c = prev && x >= ch ? prev[x - ch] : 0;
      let v;
      switch (f) {
        case 0: v = src[x]; break;
        case 1: v = src[x] + a; break;
        case 2: v = src[x] + b; break;
        case 3: v = src[x] + ((a + b) >> 1); break;
        case 4: {
          const p = a + b - c, pa = Math.abs(p - a), pb = Math.abs(p - b), pc = Math.abs(p - c);
          v = src[x] + (pa <= pb && pa <= pc ? a : pb <= pc ? b : c);
          break;
        }
        default: throw new Error(`PNG row ${y}: bad filter ${f}`);
      }
      row[x] = v & 0xff;
    }
  }
  return { width, height, channels: ch, pixels: px };
}

// Distinct colours (capped count) and the standard deviation of luminance of a decoded PNG.
function pngVariety(img) {
  const colours = new Set();
  let sum = 0, sum2 = 0, n = 0;
  for (let i = 0; i < img.pixels.length; i += img.channels) {
    const r = img.pixels[i], g = img.pixels[i + 1], b = img.pixels[i + 2];
    if (colours.size < 100000) colours.add((r << 16) | (g << 8) | b);
    const l = 0.299 * r + 0.587 * g + 0.114 * b;
    sum += l; sum2 += l * l; n++;
  }
  const mean = sum / n;
  return { colours: colours.size, stdev: Math.sqrt(Math.max(0, sum2 / n - mean * mean)) };
}

// Text of an element with thousands separators removed (the dashboard writes 12,345).
async function numberShown(page, sel) {
  const t = (await page.textContent(sel)) || '';
  return t.replace(/[,\s]/g, '');
}

// Counts the pixels of the chart's series colour (#2f6fdf, opaque) on the canvas: axes and labels are grey, so a
// non-zero count means the event-rate line (or its filled area near the line) was drawn.
async function chartLinePixels(page) {
  return page.evaluate(() => {
    const c = document.getElementById('rate-chart');
    const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
    let line = 0, painted = 0;
    for (let i = 0; i < d.length; i += 4) {
      if (d[i + 3] > 0) painted++;
      if (d[i + 3] > 200 && d[i + 2] > 180 && d[i] < 110 && d[i + 1] > 80 && d[i + 1] < 150) line++;
    }
    return { line, painted, width: c.width, height: c.height };
  });
}

// ---------------------------------------------------------------- browser
const userDataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'magpie-chromium-'));
let context;
const pageErrors = [];
const foreignRequests = [];

async function openDashboard(context) {
  const page = await context.newPage();
  page.on('pageerror', (e) => pageErrors.push(String(e)));
  page.on('console', (m) => {
    // a 4xx answer the page handles (404 for an unknown user, 401 without a key) is logged by Chromium itself
    if (m.type() === 'error' && !/Failed to load resource/.test(m.text())) pageErrors.push('console: ' + m.text());
  });
  page.on('request', (r) => {
    const u = r.url();
    if (!u.startsWith(srv.base + '/') && !u.startsWith('data:') && !u.startsWith('blob:')) foreignRequests.push(u);
  });
  const resp = await page.goto(srv.base + '/', { waitUntil: 'load' });
  check(resp && resp.status() === 200, `GET / answers 200 (got ${resp && resp.status()})`);
  check(/text\/html/.test((resp && resp.headers()['content-type']) || ''), 'GET / is text/html');
  return page;
}

async function statsMatch(page) {
  // The page polls every 1.5 s; compare against a fresh answer and retry until both agree.
  const fields = [
    ['users', '#stat-users'], ['items', '#stat-items'], ['available_items', '#stat-available-items'],
    ['events', '#stat-events'], ['categories', '#stat-categories'], ['events_ingested', '#stat-events-ingested'],
    ['events_duplicates', '#stat-events-duplicates'], ['users_forgotten', '#stat-users-forgotten'],
  ];
  let last = '';
  const ok = await until(async () => {
    const s = await api('GET', '/v1/stats');
    const diffs = [];
    for (const [k, sel] of fields) {
      const shown = await numberShown(page, sel);
      const dv = await page.getAttribute(sel, 'data-value');
      if (shown !== String(s[k]) || dv !== String(s[k])) diffs.push(`${k}: api ${s[k]}, shown "${shown}" (${dv})`);
    }
    for (const [t, n] of Object.entries(s.per_type || {})) {
      const dv = await page.getAttribute(`#stat-per-type tr[data-type="${t}"] td.num`, 'data-value').catch(() => null);
      if (dv !== String(n)) diffs.push(`per_type.${t}: api ${n}, shown ${dv}`);
    }
    const rows = await page.locator('#stat-per-type tbody tr[data-type]').count();
    if (rows !== Object.keys(s.per_type || {}).length) diffs.push(`per_type rows ${rows}`);
    last = diffs.join('; ');
    return diffs.length === 0;
  }, 8000, 300);
  return { ok, last };
}

async function mainTest(context) {
  const stats0 = await api('GET', '/v1/stats');
  const model0 = await api('GET', '/v1/model');
  check(Array.isArray(stats0.event_rate), 'GET /v1/stats has event_rate');

  const page = await openDashboard(context);
  check(await page.title() === 'Magpie dashboard', 'page title');
  check((await page.textContent('#api-key-state')) === 'no key', 'no API key stored in a fresh profile');

  step('statistics');
  await page.waitForSelector('#stat-users[data-value]:not([data-value=""])', { timeout: 8000 });
  let m = await statsMatch(page);
  check(m.ok, `statistics shown equal GET /v1/stats${m.ok ? '' : ' (' + m.last + ')'}`);
  check(/^\d+(s|m \d\ds|h \d\dm \d\ds|d \d+h \d\dm)$/.test((await page.textContent('#stat-uptime')) || ''),
        `uptime shown as a duration ("${await page.textContent('#stat-uptime')}")`);
  check(await page.locator('#stat-per-type tbody tr[data-type]').count() >= 1, 'per-type table has rows');

  step('model');
  await until(async () => (await page.textContent('#model-name')) === model0.name, 8000);
  check((await page.textContent('#model-name')) === model0.name, `model name "${model0.name}" shown`);
  check((await page.textContent('#model-version')) === String(model0.version), `model version ${model0.version} shown`);
  check(await page.locator('#model-versions tbody tr').count() === 1, 'one model version seen so far');
  const metrics = model0.meta && model0.meta.metrics ? Object.keys(model0.meta.metrics) : [];
  if (metrics.length) {
    const rows = await page.locator('#model-metrics tbody tr').count();
    check(rows >= metrics.length, `offline metrics table has ${rows} rows for ${metrics.length} metrics`);
    const first = metrics[0];
    if (typeof model0.meta.metrics[first] === 'number') {
      const shown = await page.textContent(`#model-metrics tr[data-metric="${first}"] td.num`);
      check(Math.abs(parseFloat(shown) - model0.meta.metrics[first]) < 1e-3,
            `metric ${first} = ${model0.meta.metrics[first]} shown as ${shown}`);
    }
  } else {
    check(await page.isVisible('#model-metrics-empty'), 'no metrics: the page says so');
  }

  step(`recommendations for ${USER}`);
  await page.fill('#rec-user', USER);
  await page.fill('#rec-n', String(N));
  await page.click('#rec-go');
  await page.waitForFunction((n) => document.querySelectorAll('#rec-list li').length === n, N, { timeout: 8000 })
    .catch(() => {});
  const lis = page.locator('#rec-list li');
  check(await lis.count() === N, `${N} recommendation rows (got ${await lis.count()})`);
  const shownItems = await lis.evaluateAll((els) => els.map((e) => ({
    item: e.getAttribute('data-item'),
    title: e.querySelector('.rec-title').textContent,
    category: e.querySelector('.rec-category').textContent,
    score: e.querySelector('.rec-score').textContent,
    reason: e.querySelector('.rec-reason').textContent,
  })));
  check(shownItems.every((r) => r.reason.trim().length > 0), 'every recommendation shows a reason');
  check(shownItems.every((r) => /^-?\d+\.\d{4}$/.test(r.score)), 'every recommendation shows a score');
  check(shownItems.every((r) => r.title.trim().length > 0 && r.category.trim().length > 0), 'titles and categories shown');
  const rec = await api('GET', `/v1/recommend/${encodeURIComponent(USER)}?n=${N}&explain=1`);
  check(JSON.stringify(shownItems.map((r) => r.item)) === JSON.stringify(rec.items.map((r) => r.item)),
        'the rows are the items of GET /v1/recommend, in order');
  check(shownItems.length > 0 && shownItems[0].reason === rec.items[0].reason, `first reason: "${rec.items[0] && rec.items[0].reason}"`);
  check(((await page.textContent('#rec-meta')) || '').includes(rec.model), 'model that answered is named');
  check(await page.isHidden('#rec-error'), 'no error shown for a known user');
  const hist = await api('GET', `/v1/users/${encodeURIComponent(USER)}/history?n=20`);
  const histRows = page.locator('#hist-list tr[data-item]');
  check(await histRows.count() === hist.events.length, `history shows ${hist.events.length} events`);
  if (hist.events.length) {
    check((await histRows.first().getAttribute('data-item')) === hist.events[0].item, 'newest history event first');
  }
  check(((await page.textContent('#hist-total')) || '').includes(String(hist.total)), 'history total shown');

  step('unknown user');
  const unknown = 'no-such-user-\u00e9\u4e2d';
  await page.fill('#rec-user', unknown);
  await page.click('#rec-go');
  await page.waitForSelector('#rec-error:not([hidden])', { timeout: 8000 }).catch(() => {});
  const errText = (await page.textContent('#rec-error')) || '';
  check(await page.isVisible('#rec-error'), 'an unknown user shows an error');
  check(errText.includes('404') && errText.includes('not_found'), `error names 404 not_found ("${errText}")`);
  check(errText.includes(unknown), 'error message names the user (the server\'s message)');
  check(await page.locator('#rec-list li').count() === 0, 'no rows for an unknown user');
  check(await page.locator('#hist-list tr[data-item]').count() === 0, 'no history rows for an unknown user');

  step('live event rate');
  const now = Math.floor(Date.now() / 1000);
  let posted = 0;
  for (let b = 0; b < 3; b++) {
    const batch = [];
    for (let i = 0; i < 40; i++) {
      batch.push({ user: `dash-user-${b}-${i % 7}`, item: `dash-sku-${(b * 40 + i) % 23}`, type: i % 5 ? 'view' : 'purchase',
                   ts: now - 100 + b * 40 + i });
    }
    const r = await api('POST', '/v1/events', batch);
    posted += r.accepted;
    await new Promise((res) => setTimeout(res, 250));
  }
  check(posted === 120, `120 events accepted by POST /v1/events (got ${posted})`);
  // the server's window ends with the last whole second: wait for it to take in the last batch
  let apiSum = 0;
  await until(async () => {
    const st = await api('GET', '/v1/stats');
    apiSum = st.event_rate.reduce((a, b) => a + b, 0);
    return apiSum >= 120;
  }, 5000, 200);
  check(apiSum >= 120, `server's event_rate counts the events (sum ${apiSum})`);
  await until(async () => parseInt(await numberShown(page, '#rate-total'), 10) >= 120, 8000);
  check(parseInt(await numberShown(page, '#rate-total'), 10) >= 120, `chart total shown (${await page.textContent('#rate-total')})`);
  const px = await chartLinePixels(page);
  check(px.width > 100 && px.height > 100, `chart canvas is ${px.width}x${px.height}`);
  check(px.line > 100, `the rate line is drawn on the canvas (${px.line} series pixels, ${px.painted} painted)`);
  m = await statsMatch(page);
  check(m.ok, `statistics follow the new events${m.ok ? '' : ' (' + m.last + ')'}`);

  step('model reload');
  await page.click('#model-reload');
  const v1 = String(Number(model0.version) + 1);
  await until(async () => (await page.textContent('#model-version')) === v1, 8000);
  check((await page.textContent('#model-version')) === v1, `version ${v1} shown after the reload`);
  check(await page.locator('#model-versions tbody tr').count() === 2, 'the reload adds a row to the versions table');
  check((await page.getAttribute('#model-versions tbody tr:first-child', 'data-version')) === v1, 'newest version on top');

  step('screenshot');
  // show the known user's recommendations in the picture
  await page.fill('#rec-user', USER);
  await page.click('#rec-go');
  await page.waitForFunction((n) => document.querySelectorAll('#rec-list li').length === n, N, { timeout: 8000 })
    .catch(() => {});
  await page.waitForTimeout(300);
  check(await page.isHidden('#error'), `no error banner at the end ("${await page.textContent('#error-text')}")`);
  const file = SHOT || path.join(userDataDir, 'dashboard.png');
  await page.screenshot({ path: file, fullPage: true });
  const buf = fs.readFileSync(file);
  check(buf.length > 20000, `screenshot ${file} is ${buf.length} bytes`);
  try {
    const img = decodePng(buf);
    const v = pngVariety(img);
    check(img.width >= 1000 && img.height >= 800, `screenshot is ${img.width}x${img.height}`);
    check(v.colours >= 50 && v.stdev >= 10, `screenshot is not uniform (${v.colours} colours, luminance stdev ${v.stdev.toFixed(1)})`);
  } catch (e) {
    check(false, `screenshot decodes as PNG: ${e.message}`);
  }
  await page.close();
}

async function authTest(context) {
  const page = await openDashboard(context);
  step('without a key');
  await page.waitForSelector('#error:not([hidden])', { timeout: 8000 }).catch(() => {});
  const t = (await page.textContent('#error-text')) || '';
  check(await page.isVisible('#error'), 'the error banner is shown without a key');
  check(t.includes('401') && t.includes('unauthorized'), `banner says 401 unauthorized ("${t}")`);
  check((await page.getAttribute('#stat-users', 'data-value')) === null, 'no statistics without a key');
  step('with the key');
  srv.key = AUTH_KEY; // for this test's own API calls
  await page.fill('#api-key', AUTH_KEY);
  await page.click('#api-key-save');
  await page.waitForSelector('#stat-users[data-value]:not([data-value=""])', { timeout: 8000 }).catch(() => {});
  const s = await api('GET', '/v1/stats');
  check((await page.getAttribute('#stat-users', 'data-value')) === String(s.users), 'statistics load once the key is saved');
  await until(async () => page.isHidden('#error'), 8000);
  check(await page.isHidden('#error'), 'the error banner goes away with the key');
  check((await page.textContent('#api-key-state')) === 'key set', 'key state shown');
  check(await page.evaluate(() => window.localStorage.getItem('magpie.apiKey')) === AUTH_KEY, 'key kept in localStorage');
  step('reload keeps the key');
  await page.reload({ waitUntil: 'load' });
  await page.waitForSelector('#model-name:not(:empty)', { timeout: 8000 });
  await until(async () => (await page.textContent('#model-name')) !== '\u2013', 8000);
  const mi = await api('GET', '/v1/model');
  check((await page.textContent('#model-name')) === mi.name, 'model shown after a page reload with the stored key');
  check(await page.isHidden('#error'), 'no error after the reload');
  step('a read key cannot reload the model');
  await page.click('#model-reload');
  await page.waitForSelector('#error:not([hidden])', { timeout: 8000 }).catch(() => {});
  const t403 = (await page.textContent('#error-text')) || '';
  check(t403.includes('403') && t403.includes('forbidden'), `banner says 403 forbidden ("${t403}")`);
  await page.close();
}

try {
  // A fresh, empty profile (--user-data-dir) each run: playwright passes userDataDir as that flag.
  context = await chromium.launchPersistentContext(userDataDir, {
    executablePath: CHROMIUM,
    headless: !args.headed,
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
           '--disable-background-networking', '--disable-component-update', '--disable-sync'],
    viewport: { width: 1280, height: 900 },
    deviceScaleFactor: 1,
  });
  if (BASE) {
    step(`open server ${BASE}`);
    srv = { base: BASE, key: '' };
    await mainTest(context);
  }
  if (AUTH_BASE) {
    step(`server with keys ${AUTH_BASE}`);
    srv = { base: AUTH_BASE, key: '' };
    await authTest(context);
  }
  check(pageErrors.length === 0, `no script errors in the page${pageErrors.length ? ': ' + pageErrors.join(' | ') : ''}`);
  check(foreignRequests.length === 0, `no request leaves the server${foreignRequests.length ? ': ' + foreignRequests.join(', ') : ''}`);
} catch (e) {
  failures++;
  console.log(`FAIL: ${e && e.stack ? e.stack : e}`);
} finally {
  if (context) await context.close().catch(() => {});
  fs.rmSync(userDataDir, { recursive: true, force: true });
}
console.log(`${failures ? failures + ' check(s) failed' : 'all checks passed'} in ${((Date.now() - T0) / 1000).toFixed(1)} s`);
process.exit(failures ? 1 : 0);
