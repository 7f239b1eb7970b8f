#!/usr/bin/env bash
# The most complete job Meridian runs end to end so far, on local regions: the example app is put
# in a fresh git repository; the pipeline checks it out, builds it with its buildspec, packages it
# once per region into us-east-1, eu-west-1 and ap-southeast-2's own artifact stores, and checks
# each region's packaged template in that region.
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
"$meridian" validate "$here/build-and-package.json"
"$meridian" run "$here/build-and-package.json" --repo "hello-regions=$work/app"
id=$("$meridian" --output json executions list | sed -n 's/.*"executionId": "\(.*\)".*/\1/p' | tail -n 1)
echo
echo "What eu-west-1 saw:"
"$meridian" logs "$id" Verify-eu-west-1
echo
echo "Each region's store holds its own copy of the code:"
find "$work/data/s3" -path '*sha256*' -name '*.zip' | sed "s|$work/data/||" | sort
echo
echo "Look around: MERIDIAN_DATA_DIR=$work/data $meridian executions show $id"
