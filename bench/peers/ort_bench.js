// ONNX Runtime (onnxruntime-node, CPU provider) on one model: the peer that
// `make bench` measures eex against. Prints one JSON object:
//   node ort_bench.js MODEL.onnx THREADS RUNS WARMUP
// {"times_ms": [...], "peak_rss_mb": N}. intra-op threads = THREADS, all
// graph optimizations, the same fixed-seed input shape as eex bench.
'use strict';
const path = require('path');
const ort = require(path.join(__dirname, 'node_modules', 'onnxruntime-node'));

async function main() {
  const [model, threads, runs, warmup] = process.argv.slice(2);
  const n = Number(threads);
  const session = await ort.InferenceSession.create(model, {
    executionProviders: ['cpu'],
    intraOpNumThreads: n,
    interOpNumThreads: 1,
    executionMode: 'sequential',
    graphOptimizationLevel: 'all',
  });
  const name = session.inputNames[0];
  const dims = [1, 3, 224, 224];
  const data = new Float32Array(dims.reduce((a, b) => a * b, 1));
  let r = 0x2545f491;
  for (let i = 0; i < data.length; i++) {
    r ^= r << 13; r ^= r >>> 17; r ^= r << 5; r >>>= 0;
    data[i] = (r / 4294967296) * 2 - 1;
  }
  const feeds = { [name]: new ort.Tensor('float32', data, dims) };
  for (let i = 0; i < Number(warmup); i++) await session.run(feeds);
  const times = [];
  for (let i = 0; i < Number(runs); i++) {
    const t0 = process.hrtime.bigint();
    await session.run(feeds);
    times.push(Number(process.hrtime.bigint() - t0) / 1e6);
  }
  const rssMb = process.resourceUsage().maxRSS / 1024; // KiB on Linux
  process.stdout.write(JSON.stringify({ times_ms: times, peak_rss_mb: rssMb }) + '\n');
}

main().catch((e) => { console.error(`ort_bench: ${e.message}`); process.exit(1); });
