#!/usr/bin/env bash
# The most complete job Meridian runs end to end so far, on local regions: the example app is put
# in a fresh git repository; its native pipeline (meridian.yaml) checks it out, builds it with its
# buildspec, packages it once per region into each region's own bucket, deploys its SAM template as
# a stack to us-east-1 first, smoke-tests it, then to eu-west-1 and ap-southeast-2 in parallel
# (Ireland with its own greeting). Then every region's function is invoked.
# (Canary traffic shifting, health judgement and automatic rollback come with progressive delivery.)
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
(cd "$root" && cargo build -q -p meridian-cli)
meridian="$root/target/debug/meridian"
work=$(mktemp -d "${TMPDIR:-/tmp}/meridian-demo.XXXXXX")
mkdir -p "$work/app"
cp -r "$here/src" "$here/template.yaml" "$here/buildspec.yml" "$here/meridian.yaml" "$work/app/"
git -C "$work/app" init -q -b main
git -C "$work/app" -c user.email=demo@example.com -c user.name=Demo add .
git -C "$work/app" -c user.email=demo@example.com -c user.name=Demo commit -q -m "hello-regions"
export MERIDIAN_DATA_DIR="$work/data"
cd "$work/app"
"$meridian" validate meridian.yaml
"$meridian" run meridian.yaml
echo
echo "Stacks:"
"$meridian" stack list
echo
for region in us-east-1 eu-west-1 ap-southeast-2; do
  fn=$("$meridian" stack outputs --region "$region" --stack-name hello-regions | sed -n 's/^FunctionName\t//p')
  printf '%-15s %s:live -> ' "$region" "$fn"
  "$meridian" lambda invoke --region "$region" "$fn:live" --payload '{"from":"demo"}' 2>/dev/null
done
echo
echo "Look around:"
echo "  export MERIDIAN_DATA_DIR=$work/data"
echo "  $meridian executions list"
echo "  $meridian stack describe --region eu-west-1 --stack-name hello-regions"
echo "  $meridian stack events --region eu-west-1 --stack-name hello-regions"
echo "  $meridian lambda invoke --region ap-southeast-2 <function>:live"
