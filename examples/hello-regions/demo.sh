#!/usr/bin/env bash
# Meridian's demo, on three local regions (README's first command). The example app is put in a
# fresh git repository, and its native pipeline (meridian.yaml) runs three times:
#
#   1. release 1: build, package once per region, create the stack in us-east-1, smoke-test it,
#      then eu-west-1 and ap-southeast-2 in parallel;
#   2. release 2 (a good change): in every region the alias shifts 10% of the traffic to the new
#      version under synthetic traffic, bakes, the canary judge compares new and old, then 100%;
#      us-east-1 first, then the other two in parallel;
#   3. release 3 (a bug for most requests): the canary in us-east-1 trips the errors alarm, the
#      alias and the stack are rolled back there, and the other regions are never touched.
#
# Time runs 60 times faster (--time-scale 60): Canary10Percent5Minutes bakes 5 seconds.
# eu-west-1 and ap-southeast-2 have deployment windows; the demo shows them, then skips them.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
(cd "$root" && cargo build -q -p meridian-cli)
meridian="$root/target/debug/meridian"
work=$(mktemp -d "${TMPDIR:-/tmp}/meridian-demo.XXXXXX")
mkdir -p "$work/app"
cp -r "$here/src" "$here/template.yaml" "$here/buildspec.yml" "$here/meridian.yaml" "$here/traffic.jsonl" "$work/app/"
git="git -C $work/app -c user.email=demo@example.com -c user.name=Demo"
$git init -q -b main
$git add .
$git commit -q -m "hello-regions release 1"
export MERIDIAN_DATA_DIR="$work/data"
cd "$work/app"
started=$(date +%s)
say() { printf '\n\033[1m== %s\033[0m\n' "$*"; }

say "The pipeline, and the regions' deployment windows"
"$meridian" validate meridian.yaml
"$meridian" windows meridian.yaml --count 1

say "Release 1: create the stacks (us-east-1, then eu-west-1 + ap-southeast-2)"
"$meridian" run meridian.yaml --time-scale 60 --skip-windows

say "Release 2: canary shifting under synthetic traffic, judged, region by region"
sed -i 's/const RELEASE = "1";/const RELEASE = "2";/' src/index.js
$git commit -q -am "hello-regions release 2"
"$meridian" run meridian.yaml --time-scale 60 --skip-windows -v 2>&1 |
  grep -E '\] \[[a-z0-9-]+ d-|release rel-|^execution ' || true

say "Release 3: a bug for signed-in users; the canary in us-east-1 must catch it"
sed -i 's|^exports.handler = async (event) => {|exports.handler = async (event) => {\n  if (event.user) throw new Error(`profile of ${event.user} not found`); // the bug|' src/index.js
$git commit -q -am "hello-regions release 3"
if "$meridian" run meridian.yaml --time-scale 60 --skip-windows -v 2>&1 |
  grep -E '\] \[[a-z0-9-]+ d-|release rel-|^execution '; then :; fi

say "What is live where (the release ledger)"
"$meridian" releases hello-regions
echo
"$meridian" releases hello-regions --history

say "Deployments (one region's move of one alias)"
"$meridian" deployments list

say "Every region answers from its live release"
for region in us-east-1 eu-west-1 ap-southeast-2; do
  fn=$("$meridian" stack outputs --region "$region" --stack-name hello-regions | sed -n 's/^FunctionName\t//p')
  printf '%-15s %s:live -> ' "$region" "$fn"
  "$meridian" lambda invoke --region "$region" "$fn:live" --payload '{"user":"demo"}' 2>/dev/null
done

say "Done in $(($(date +%s) - started)) s. Look around:"
echo "  export MERIDIAN_DATA_DIR=$work/data"
echo "  $meridian executions list"
echo "  $meridian deployments show <id>          # every step of a deployment"
echo "  $meridian releases hello-regions --history"
echo "  $meridian rollback hello-regions --regions eu-west-1 --time-scale 60"
echo "  $meridian lambda invoke --region ap-southeast-2 <function>:live --payload '{\"user\":\"ada\"}'"
