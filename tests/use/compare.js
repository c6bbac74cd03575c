#!/usr/bin/env node
// node tests/use/compare.js REF.f32 OURS.f32 [MIN_COS]: row-wise cosine similarity of two n x 512 float32 files
// (tests/use/embed.js --out, use_bench --dump). Prints "n=N min_cos=X (line L) mean_cos=Y"; exits 1 when the
// sizes differ or, given MIN_COS, when the smallest cosine is below it.
'use strict';
const fs = require('fs');
const [refPath, oursPath, minArg] = process.argv.slice(2);
if (!oursPath) { console.error('usage: compare.js REF.f32 OURS.f32 [MIN_COS]'); process.exit(2); }
const read = (p) => { const b = fs.readFileSync(p); return new Float32Array(b.buffer, b.byteOffset, b.length / 4); };
const a = read(refPath), b = read(oursPath);
if (a.length !== b.length || a.length % 512 !== 0) {
  console.error(`compare.js: sizes differ: ${refPath} has ${a.length / 512} rows, ${oursPath} ${b.length / 512}`);
  process.exit(1);
}
const n = a.length / 512;
let min = Infinity, minAt = -1, sum = 0;
for (let i = 0; i < n; i++) {
  let d = 0, na = 0, nb = 0;
  for (let j = i * 512; j < (i + 1) * 512; j++) { d += a[j] * b[j]; na += a[j] * a[j]; nb += b[j] * b[j]; }
  const c = d / Math.sqrt(na * nb);
  sum += c;
  if (!(c >= min)) { min = c; minAt = i; }
}
console.log(`n=${n} min_cos=${min.toFixed(6)} (line ${minAt + 1}) mean_cos=${(sum / n).toFixed(6)}`);
if (minArg !== undefined && !(min >= parseFloat(minArg))) {
  console.error(`compare.js: min cosine ${min.toFixed(6)} at line ${minAt + 1} is below ${minArg}`);
  process.exit(1);
}
