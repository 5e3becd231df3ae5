"""Runs llama.cpp's own llama-server (embedded in the pinned xllamacpp wheel) for the server tier of the tests.

Usage: llama_server.py --model PATH --port PORT --parallel N --ctx TOKENS --threads N [--api-key-env NAME]
Prints one line "llama-server ready on http://127.0.0.1:PORT" once the model is loaded and it listens, then runs
until killed (SIGTERM/SIGINT end it cleanly; the tests also SIGKILL it to show a server dying mid-reply).
Bound to 127.0.0.1 only. The same settings as `llama-server -m PATH --host 127.0.0.1 --port PORT -np N -c TOKENS -t N`.
"""

import argparse
import os
import signal
import threading

import xllamacpp


def main() -> None:
    parser = argparse.ArgumentParser(description="llama-server for the mood-bot tests")
    parser.add_argument("--model", required=True, help="GGUF file")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--parallel", type=int, default=1, help="slots (llama-server -np)")
    parser.add_argument("--ctx", type=int, default=2048, help="whole KV cache; each slot gets ctx / parallel")
    parser.add_argument("--threads", type=int, default=1)
    # The key comes through the environment so it never shows in `ps`.
    parser.add_argument("--api-key-env", help="name of an environment variable holding an API key to require")
    args = parser.parse_args()

    params = xllamacpp.CommonParams()
    params.model.path = args.model
    params.hostnames = ["127.0.0.1"]
    params.port = args.port
    params.n_parallel = args.parallel
    params.n_ctx = args.ctx
    # Both: llama.cpp's threads spin while they wait, and the test machine is shared.
    params.cpuparams.n_threads = args.threads
    params.cpuparams_batch.n_threads = args.threads
    params.endpoint_slots = True
    params.endpoint_metrics = True
    params.warmup = False
    if args.api_key_env:
        params.api_keys = [os.environ[args.api_key_env]]

    # The server runs on its own threads; this one only keeps the process alive until a signal arrives.
    server = xllamacpp.Server(params)
    print(f"llama-server ready on {server.listening_address}", flush=True)
    done = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: done.set())
    signal.signal(signal.SIGINT, lambda *_: done.set())
    done.wait()
    del server


if __name__ == "__main__":
    main()
