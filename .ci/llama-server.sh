# llama.cpp's own llama-server for the server tier of the tests (issue 22): the pinned xllamacpp wheel from PyPI
# (MIT; a prebuilt linux x86_64 wheel that embeds llama.cpp's tools/server) in a virtualenv at test/.venv.
# Sourced by .ci/run. install_llama_server makes the venv from scratch (or leaves a matching one alone) and exports
# LLAMA_SERVER_PYTHON; the test files then start their own servers on ports of their own through
# test/support/llamaServer.ts (test/support/llama_server.py), with the models in test/.models.
# Usable by hand too: `source .ci/llama-server.sh && install_llama_server`.

XLLAMACPP_VERSION="2026.10.11549"
LLAMA_SERVER_VENV="${LLAMA_SERVER_VENV:-test/.venv}"

install_llama_server() {
  local python="$LLAMA_SERVER_VENV/bin/python"
  if [ -x "$python" ] && "$python" -c "import importlib.metadata as m, sys; sys.exit(m.version('xllamacpp') != '$XLLAMACPP_VERSION')" 2>/dev/null; then
    export LLAMA_SERVER_PYTHON="$(cd "$LLAMA_SERVER_VENV" && pwd)/bin/python"
    echo "llama-server: xllamacpp $XLLAMACPP_VERSION already in $LLAMA_SERVER_VENV"
    return 0
  fi
  # Python's venv module is a separate Debian package; without it `python3 -m venv` fails.
  if ! python3 -m venv --help >/dev/null 2>&1 || ! python3 -c "import ensurepip" >/dev/null 2>&1; then
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq python3-venv >/dev/null \
      || { echo "llama-server: python3-venv could not be installed; the llama-server tests will be skipped"; return 0; }
  fi
  rm -rf "$LLAMA_SERVER_VENV"
  if python3 -m venv "$LLAMA_SERVER_VENV" \
    && "$LLAMA_SERVER_VENV/bin/pip" install --quiet --disable-pip-version-check --only-binary=:all: "xllamacpp==$XLLAMACPP_VERSION" \
    && "$python" -c "import xllamacpp"; then
    export LLAMA_SERVER_PYTHON="$(cd "$LLAMA_SERVER_VENV" && pwd)/bin/python"
    echo "llama-server: xllamacpp $XLLAMACPP_VERSION installed in $LLAMA_SERVER_VENV"
  else
    rm -rf "$LLAMA_SERVER_VENV"
    echo "llama-server: installing xllamacpp $XLLAMACPP_VERSION failed; the llama-server tests will be skipped"
  fi
}
