#!/usr/bin/env bash
# Mutation testing of one module with mutmut, within a time budget (not run in CI: hours for all).
#
#   scripts/mutation.sh MODULE [BUDGET_MINUTES] [TEST_FILE ...]
#   scripts/mutation.sh agents/buffer.py 20
#   scripts/mutation.sh agents/reinforce.py 30 tests/agents/test_reinforce.py
#
# MODULE is a path such as agents/buffer.py. The tests run are TEST_FILEs when given, else every
# test file of the copy that imports MODULE by its dotted name (agents.buffer); mutmut then runs, for each
# mutant, only those of them that call the mutated function. The run happens in a scratch copy
# of the working tree (MUTATION_DIR, default /tmp/mutation-<module>), so the checkout is never
# touched; rerunning continues where the last run stopped (mutmut keeps finished results).
# At the end (or when the budget runs out) it prints the killed / survived / ... counts and
# writes them with the list of surviving mutants to MUTATION_DIR/summary.txt; inspect one with
# `cd MUTATION_DIR && mutmut show NAME`. Runs under `nice -n 15`: the machine is shared.
#
# Before and after new tests: MUTATION_REV=<commit> copies that commit instead of the working
# tree (the score of the tests as they were); a later run with RECHECK=1 copies the working tree
# over it and reruns only the mutants that survived, keeping the other results. MUTANTS='GLOB ...'
# restricts a run to the mutants whose names match (mutmut names them module.xǁClassǁmethod__mutmut_N).
# PYTEST_K='EXPR' (no quotes in it) runs only the tests pytest's -k EXPR selects, e.g. to leave
# out the compile tests, which take seconds per mutant in a fresh process; say so beside the
# scores it gives.
set -euo pipefail

if [[ $# -lt 1 || ! -f "$1" || "$1" != *.py ]]; then
  echo "usage: scripts/mutation.sh MODULE.py [BUDGET_MINUTES] [TEST_FILE ...] (run from the repo root)" >&2
  exit 2
fi
module="$1"
budget="${2:-30}"
shift $(( $# >= 2 ? 2 : 1 ))
if ! [[ "$budget" =~ ^[1-9][0-9]*$ ]]; then
  echo "error: BUDGET_MINUTES must be a positive integer, got '$budget'" >&2
  exit 2
fi
if [[ "${PYTEST_K:-}" == *[\"\\]* ]]; then
  echo "error: PYTEST_K may not hold a double quote or a backslash, got: $PYTEST_K" >&2
  exit 2
fi
dotted="${module%.py}"
dotted="${dotted//\//.}"

work="${MUTATION_DIR:-/tmp/mutation-${dotted}}"
mkdir -p "$work"
if [[ -n "${MUTATION_REV:-}" ]]; then
  git archive "$MUTATION_REV" | tar -xf - -C "$work"
else  # the working tree as it is (tracked and untracked-but-not-ignored files), over the last copy
  git ls-files -co --exclude-standard -z | tar --null -T - -cf - | tar -xf - -C "$work"
fi
# mutmut 3 leaves decorated functions unmutated; in the copy, `@torch.no_grad()` becomes the same
# wrapper applied by assignment after the function (`f = torch.no_grad()(f)`), so they are mutated.
python - "$work/$module" <<'NOGRAD'
import ast
import sys
from pathlib import Path

path = Path(sys.argv[1])
lines = path.read_text().splitlines(keepends=True)
edits = []  # (decorator line index, line index after the function, indent, name)
for node in ast.walk(ast.parse("".join(lines))):
    if (isinstance(node, ast.FunctionDef) and len(node.decorator_list) == 1
            and ast.unparse(node.decorator_list[0]) == "torch.no_grad()"):
        edits.append((node.decorator_list[0].lineno - 1, node.end_lineno, node.col_offset,
                      node.name))
for decorator_line, end, indent, name in sorted(edits, reverse=True):
    lines.insert(end, f"{' ' * indent}{name} = torch.no_grad()({name})\n")
    del lines[decorator_line]
path.write_text("".join(lines))
NOGRAD
tests=("$@")
if [[ ${#tests[@]} -eq 0 ]]; then
  mapfile -t tests < <(cd "$work" && grep -rlE "(from|import) ${dotted//./\\.}( |$)" tests --include='test_*.py' | sort)
fi
if [[ ${#tests[@]} -eq 0 ]]; then
  echo "error: no test file imports $dotted; name the tests: scripts/mutation.sh $module $budget TEST_FILE ..." >&2
  exit 2
fi
packages=$(python - <<'EOF'
import tomllib
print(" ".join(tomllib.load(open("pyproject.toml", "rb"))["tool"]["setuptools"]["packages"]))
EOF
)
quoted() { printf '"%s", ' "$@"; }
k_args=""
[[ -n "${PYTEST_K:-}" ]] && k_args=", \"-k\", \"$PYTEST_K\""
cat >> "$work/pyproject.toml" <<EOF

[tool.mutmut]
source_paths = [$(quoted $packages)]
also_copy = ["configs/", "train.py", "benchmarks/", "docs/"]
only_mutate = ["$module"]
pytest_add_cli_args = ["-p", "no:cacheprovider", "-p", "no:randomly"$k_args]
pytest_add_cli_args_test_selection = [$(quoted "${tests[@]}")]
process_isolation = "forkserver"
# the machine is shared: a mutant counts as a timeout only past 50x its tests' clean time
timeout_multiplier = 50.0
EOF

cd "$work"
echo "mutating $module for at most $budget min with: ${tests[*]}" >&2
read -ra names <<< "${MUTANTS:-}"  # mutant-name globs to restrict the run to, e.g. 'agents.reinforce.xǁReinforceǁupdate*'
if [[ -n "${RECHECK:-}" ]]; then
  mapfile -t names < <(mutmut results | sed -nE 's/^ *([^ ]+): survived$/\1/p')
  echo "rechecking the ${#names[@]} surviving mutants" >&2
fi
set +e
OMP_NUM_THREADS=1 timeout --signal=INT --kill-after=60 "$((budget * 60))" nice -n 15 mutmut run "${names[@]}"
status=$?
set -e
if [[ $status -eq 124 ]]; then
  echo "budget of $budget min spent; rerun to continue" >&2
fi
mutmut export-cicd-stats >/dev/null
{
  echo "module: $module  budget: $budget min  tests: ${tests[*]}  date: $(date -u +%FT%TZ)"
  python -c "import json; s = json.load(open('mutants/mutmut-cicd-stats.json')); print(' '.join(f'{k}={v}' for k, v in s.items()))"
  echo "surviving:"
  mutmut results | grep -E ": (survived|no tests)" || true
} | tee summary.txt
