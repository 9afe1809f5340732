// Runs Vectors/trainer/veil_local_training.json through ./trainer.js: every training case must
// give the listed update bit for bit (each double compared by its 16 hex digits) and the listed
// example count, its stream must be SHA-256 of its participant id (WebCrypto), and every CSV case
// must read as listed or be refused with the listed code. Then it times softmax training on
// 1,000 rows × 20 features, 10 classes, 1 epoch, batch 32 (best of 5).
//
// Query parameters: `root` — the URL of Vectors/ (default ../../Vectors/); `perturb=1` — flip
// the last bit of each plan's learning rate (the mutation the test requires to fail).
// When done, document.title is "PASS n" or "FAIL …", and window.veilTrainerResults holds
//   { cases, passed, failed, trainCases, csvCases, failures: [...], mismatchedDoubles, perturbed,
//     bench: { rows, features, classes, batchSize, bestMs, runsMs }, error, elapsedMs }.

import { trainLocally, parseCsv, fromBits, toBits, streamForId, Xoshiro256 } from "../participant/trainer.js";

const FILE = "trainer/veil_local_training.json";
const params = new URLSearchParams(location.search);
const root = params.get("root") ?? new URL("../../Vectors/", location.href).href;
const perturb = params.get("perturb") === "1";
const log = (line) => { document.getElementById("log").textContent += line + "\n"; };

function flipLastBit(hex) {
  const last = parseInt(hex[15], 16) ^ 1;
  return hex.slice(0, 15) + last.toString(16);
}

async function runTrain(test) {
  const plan = { ...test.plan };
  if (perturb) plan.learningRate = flipLastBit(plan.learningRate);
  for (const name of ["learningRate", "momentum", "weightDecay", "proximalMu"]) plan[name] = fromBits(plan[name]);
  const stream = await streamForId(null, test.participantId);
  if (String(stream) !== test.stream) return { problem: `stream ${stream}, listed ${test.stream}`, differing: 0 };
  const rows = test.rows.flat().map(fromBits);
  const result = trainLocally({
    modelSpec: test.model, features: test.features, classes: test.classes,
    parameters: Float64Array.from(test.parameters.map(fromBits)),
    dataset: { features: Float64Array.from(rows), labels: Int32Array.from(test.labels), count: test.labels.length, featureCount: test.features },
    plan, seed: BigInt(test.seed), stream,
  });
  const computed = Array.from(result.delta, toBits);
  let differing = 0;
  for (let i = 0; i < Math.max(computed.length, test.delta.length); i++) if (computed[i] !== test.delta[i]) differing++;
  if (differing) return { problem: `delta: ${differing} of ${test.delta.length} doubles differ (first at ${computed.findIndex((h, i) => h !== test.delta[i])})`, differing };
  if (result.examples !== test.examples) return { problem: `examples ${result.examples}, listed ${test.examples}`, differing: 0 };
  return { problem: null, differing: 0 };
}

function runCsv(test) {
  let data;
  try {
    data = parseCsv(test.csv, { classCount: test.classCount ?? null });
  } catch (error) {
    if (test.result === "invalid" && error.code === test.error) return null;
    return `refused with ${error.code ?? error}, listed ${test.result}${test.error ? " " + test.error : ""}`;
  }
  if (test.result === "invalid") return `accepted an invalid case (listed ${test.error})`;
  const rows = [];
  for (let r = 0; r < data.count; r++) rows.push(Array.from(data.features.subarray(r * data.featureCount, (r + 1) * data.featureCount), toBits));
  if (JSON.stringify(rows) !== JSON.stringify(test.rows)) return "rows differ";
  if (JSON.stringify(Array.from(data.labels)) !== JSON.stringify(test.labels)) return "labels differ";
  if (data.featureCount !== test.features || data.classCount !== test.classes) return "shape differs";
  return null;
}

function bench() {
  const generator = new Xoshiro256(5n, 1n);
  const rows = 1000, features = 20, classes = 10;
  const x = new Float64Array(rows * features);
  for (let i = 0; i < x.length; i++) x[i] = 2 * generator.unit() - 1;
  const labels = new Int32Array(rows);
  for (let i = 0; i < rows; i++) labels[i] = generator.below(classes);
  const plan = { algorithm: "fedavg", localEpochs: 1, batchSize: 32, learningRate: 0.1, momentum: 0, weightDecay: 0, proximalMu: 0 };
  const runsMs = [];
  for (let run = 0; run < 5; run++) {
    const began = performance.now();
    trainLocally({
      modelSpec: "softmax", features, classes, parameters: new Float64Array(classes * (features + 1)),
      dataset: { features: x, labels, count: rows, featureCount: features }, plan, seed: 1n, stream: 2n,
    });
    runsMs.push(performance.now() - began);
  }
  return { rows, features, classes, batchSize: 32, epochs: 1, bestMs: Math.min(...runsMs), runsMs };
}

async function main() {
  const started = performance.now();
  const results = { cases: 0, passed: 0, failed: 0, trainCases: 0, csvCases: 0, failures: [], mismatchedDoubles: 0, perturbed: perturb, bench: null, error: null };
  window.veilTrainerResults = results;
  try {
    const response = await fetch(new URL(FILE, root), { cache: "no-store" });
    if (!response.ok) throw new Error(`${FILE}: HTTP ${response.status}`);
    const data = await response.json();
    if (data.algorithm !== "VEIL-LOCAL-TRAINING") throw new Error(`${FILE}: algorithm ${data.algorithm}`);
    for (const group of data.testGroups) {
      for (const test of group.tests) {
        results.cases++;
        let problem;
        if (test.operation === "train") {
          results.trainCases++;
          const outcome = await runTrain(test);
          problem = outcome.problem;
          results.mismatchedDoubles += outcome.differing;
        } else if (test.operation === "parseCsv") {
          results.csvCases++;
          problem = runCsv(test);
        } else {
          problem = `unknown operation ${test.operation}`;
        }
        if (problem) {
          results.failed++;
          results.failures.push(`tcId ${test.tcId}: ${problem}`);
          log(`FAIL tcId ${test.tcId}: ${problem}`);
        } else {
          results.passed++;
        }
      }
    }
    if (results.cases !== data.numberOfTests) throw new Error(`numberOfTests ${data.numberOfTests}, ran ${results.cases}`);
    log(`${results.passed} of ${results.cases} cases as listed (${results.trainCases} training, ${results.csvCases} CSV)`);
    results.bench = bench();
    log(`softmax, 1000 rows x 20 features, 10 classes, 1 epoch, batch 32: ${results.bench.bestMs.toFixed(2)} ms (best of 5)`);
  } catch (error) {
    results.error = `${error.name}: ${error.message}`;
    log(results.error);
  }
  results.elapsedMs = performance.now() - started;
  document.title = !results.error && results.failed === 0 && results.cases > 0
    ? `PASS ${results.passed}` : `FAIL ${results.failed} of ${results.cases}${results.error ? " " + results.error : ""}`;
}

main();
