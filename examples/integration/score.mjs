// Score a 16 kHz mono WAV file (16-bit PCM or 32-bit float) with a SoundSentry single-file model,
// from Node.js and onnxruntime-node alone:  node score.mjs fan.onnx recording.wav
import { readFileSync } from "node:fs";
import * as ort from "onnxruntime-node";

function readWav(path) {
  const b = readFileSync(path);
  let pos = 12, fmt = null;
  while (pos + 8 <= b.length) {
    const id = b.toString("ascii", pos, pos + 4), size = b.readUInt32LE(pos + 4), body = pos + 8;
    if (id === "fmt ") fmt = { format: b.readUInt16LE(body), channels: b.readUInt16LE(body + 2),
                               rate: b.readUInt32LE(body + 4), bits: b.readUInt16LE(body + 14) };
    if (id === "data") {
      if (!fmt || fmt.channels !== 1 || fmt.rate !== 16000) throw new Error("need 16 kHz mono WAV");
      const n = size / (fmt.bits / 8), out = new Float32Array(n);
      for (let i = 0; i < n; i++)
        out[i] = fmt.bits === 16 ? b.readInt16LE(body + 2 * i) / 32768 : b.readFloatLE(body + 4 * i);
      return out;
    }
    pos = body + size + (size % 2);
  }
  throw new Error("no data chunk");
}

const [model, wav] = process.argv.slice(2);
const session = await ort.InferenceSession.create(model);
const samples = readWav(wav);
const { window_scores, score, abnormal } = await session.run({ samples: new ort.Tensor("float32", samples, [samples.length]) });
console.log(JSON.stringify({ windows: Array.from(window_scores.data), score: score.data[0], abnormal: Boolean(abnormal.data[0]) }));
