#!/usr/bin/env bash
# Checks Hearth_v1 against implementations nobody on the team wrote
# (issue 3, "Proof against others"):
#   1. check_vectors.py: the committed vectors through the PyPI packages
#      doubleratchet 1.3.0 (every ratchet conversation, both parties) and
#      pyca cryptography 50 (ML-KEM-768, X25519, Ed25519, HKDF, HPKE);
#   2. produce_conversation.py: doubleratchet plays a conversation, and our
#      crate replays and decrypts it (example `interop-decrypt`).
# Needs python3 (with pip or venv) and cargo; installs the pinned packages in
# a venv under target/interop-venv (reused when present). Exits non-zero on
# any mismatch; the last line is `interop: N passed, M failed`.
set -euo pipefail
cd "$(dirname "$0")/../.."
# Keep the source tree clean of __pycache__.
export PYTHONDONTWRITEBYTECODE=1

interop=protocol/interop
venv=target/interop-venv
work=target/interop
mkdir -p "$work"

stamp="$venv/.requirements.sha256"
want=$(sha256sum "$interop/requirements.txt" | cut -d' ' -f1)
if [[ ! -x "$venv/bin/python" || "$(cat "$stamp" 2>/dev/null)" != "$want" ]]; then
  echo "interop: installing $interop/requirements.txt into $venv"
  rm -rf "$venv"
  if python3 -m venv "$venv" 2>/dev/null && "$venv/bin/python" -m pip --version >/dev/null 2>&1; then
    pip=("$venv/bin/python" -m pip)
  else
    # No ensurepip (e.g. Debian without python3-venv): a bare venv, filled
    # by the system pip.
    rm -rf "$venv"
    python3 -m venv --without-pip "$venv"
    pip=(python3 -m pip --python "$venv/bin/python")
  fi
  "${pip[@]}" install --disable-pip-version-check --no-input --quiet \
    --only-binary=:all: -r "$interop/requirements.txt"
  echo "$want" >"$stamp"
fi
python="$venv/bin/python"

passed=0
failed=0
# Runs a check, shows its output, and adds its `RESULT passed=N failed=M`
# line to the totals (a check that dies without one counts as one failure).
tally() {
  local out status=0
  out=$("$@" 2>&1) || status=$?
  printf '%s\n' "$out" | grep -v '^RESULT ' || true
  local result
  result=$(printf '%s\n' "$out" | grep '^RESULT ' | tail -n1 || true)
  if [[ "$result" =~ ^RESULT\ passed=([0-9]+)\ failed=([0-9]+)$ ]]; then
    passed=$((passed + BASH_REMATCH[1]))
    failed=$((failed + BASH_REMATCH[2]))
    if [[ $status -ne 0 && ${BASH_REMATCH[2]} -eq 0 ]]; then
      failed=$((failed + 1))
    fi
  else
    echo "interop: '$*' exited with status $status and no result"
    failed=$((failed + 1))
  fi
}

echo "== doubleratchet 1.3.0 and cryptography $("$python" -c 'import cryptography; print(cryptography.__version__)') check protocol/tests/vectors/hearth_v1.json"
tally "$python" "$interop/check_vectors.py" protocol/tests/vectors/hearth_v1.json

echo "== doubleratchet 1.3.0 produces a conversation; hearth-protocol decrypts it"
conversation="$work/python_conversation.json"
if "$python" "$interop/produce_conversation.py" "$conversation"; then
  tally cargo run --quiet -p hearth-protocol --example interop-decrypt -- "$conversation"
else
  echo "interop: produce_conversation.py failed"
  failed=$((failed + 1))
fi

echo "interop: $passed passed, $failed failed"
[[ $failed -eq 0 ]]
