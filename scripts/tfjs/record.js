// Run a TensorFlow.js graph model offline (pure-JS CPU backend, no TensorFlow) and print named outputs as JSON.
// Used once to record the reference outputs that tests/fixtures/human_models/ holds; see scripts/record_human_models.py.
//   node record.js MODEL.json INPUT.bin DTYPE N,H,W,C NODE[,NODE...] > out.json
// INPUT.bin: raw little-endian int32 or float32 values in NHWC order. NODE: graph node names (":k" for output k).
const fs = require('fs');
const path = require('path');
const tf = require('@tensorflow/tfjs');

async function main() {
  const [modelJson, inputBin, dtype, shapeText, nodesText] = process.argv.slice(2);
  await tf.setBackend('cpu');
  const graph = JSON.parse(fs.readFileSync(modelJson, 'utf8'));
  const specs = [];
  const buffers = [];
  for (const group of graph.weightsManifest) {
    specs.push(...group.weights);
    for (const p of group.paths) buffers.push(fs.readFileSync(path.join(path.dirname(modelJson), p)));
  }
  const weights = Buffer.concat(buffers);
  const weightData = weights.buffer.slice(weights.byteOffset, weights.byteOffset + weights.byteLength);
  const model = await tf.loadGraphModel(tf.io.fromMemory({
    modelTopology: graph.modelTopology, weightSpecs: specs, weightData,
    format: graph.format, generatedBy: graph.generatedBy, convertedBy: graph.convertedBy,
    signature: graph.signature,
  }));
  const raw = fs.readFileSync(inputBin);
  const shape = shapeText.split(',').map(Number);
  const values = dtype === 'int32'
    ? new Int32Array(raw.buffer, raw.byteOffset, raw.byteLength / 4)
    : new Float32Array(raw.buffer, raw.byteOffset, raw.byteLength / 4);
  const input = tf.tensor(values, shape, dtype);
  const nodes = nodesText.split(',');
  const outputs = await model.executeAsync(input, nodes);
  const list = Array.isArray(outputs) ? outputs : [outputs];
  const result = {};
  for (let i = 0; i < nodes.length; i++) {
    result[nodes[i]] = { shape: list[i].shape, data: Array.from(await list[i].data()) };
  }
  process.stdout.write(JSON.stringify(result));
}

main().catch((err) => { console.error(err); process.exit(1); });
