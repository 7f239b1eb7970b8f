#!/usr/bin/env bash
# Meridian's demo on AWS regions: the same app and pipeline as demo.sh, with `backend: aws`.
#
#   bash examples/hello-regions/demo-aws.sh          # against moto's server, started here
#   AWS_PROFILE=dev bash examples/hello-regions/demo-aws.sh --real   # against your AWS account
#
# Steps: `meridian bootstrap` makes each region's artifact bucket (encrypted, versioned, private);
# release 1 creates the stacks (us-east-1, then eu-west-1 + ap-southeast-2), the code packaged into
# each region's own bucket; release 2 shifts the `live` alias 10% -> 100% with UpdateAlias in
# every region; release 3 is caught by its errors alarm in us-east-1, the alias goes back, the
# stack is put back on its previous template, and the other regions are never touched.
#
# moto needs scripts/setup.sh (.venv-moto). What moto does not do, and this script does for it
# (marked `moto:` below): run function code (it needs Docker for that, so there is no traffic to
# send or judge: the pipeline's `traffic:` and `judge:` are left out), create the stack's
# `AWS::Lambda::Alias` and `AWS::CloudWatch::Alarm` (its CloudFormation skips both types), and
# evaluate alarms (the canary's alarm is set to ALARM by hand, as CloudWatch would on errors).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
real=false
[[ ${1:-} == --real ]] && real=true
(cd "$root" && cargo build -q -p meridian-cli --features aws)
meridian="$root/target/debug/meridian"
work=$(mktemp -d "${TMPDIR:-/tmp}/meridian-demo-aws.XXXXXX")
mkdir -p "$work/app"
cp -r "$here/src" "$here/template.yaml" "$here/buildspec.yml" "$here/meridian.yaml" "$here/traffic.jsonl" "$work/app/"
sed -i '1a backend: aws        # every region through the AWS SDK' "$work/app/meridian.yaml"
export MERIDIAN_DATA_DIR="$work/data"
say() { printf '\n\033[1m== %s\033[0m\n' "$*"; }
py="$root/.venv-moto/bin/python"
scale=1

if ! $real; then
  [[ -x "$py" ]] || { echo "moto is not installed: run 'bash scripts/setup.sh' first" >&2; exit 1; }
  # moto: no function code runs, so nothing to send traffic to or to judge
  "$py" - "$work/app/meridian.yaml" <<'EOF'
import re, sys
p = sys.argv[1]
s = open(p).read()
s = re.sub(r"  traffic:.*?\n(?=  rollback)", "", s, flags=re.S)
open(p, "w").write(s)
EOF
  port=$("$py" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
  "$root/.venv-moto/bin/moto_server" -H 127.0.0.1 -p "$port" >"$work/moto.log" 2>&1 &
  moto_pid=$!
  trap 'kill $moto_pid 2>/dev/null || true' EXIT
  until curl -s "http://127.0.0.1:$port/" >/dev/null; do sleep 0.2; done
  export AWS_ENDPOINT_URL="http://127.0.0.1:$port" AWS_ACCESS_KEY_ID=testing AWS_SECRET_ACCESS_KEY=testing
  unset AWS_PROFILE
  scale=60
  echo "moto's server: $AWS_ENDPOINT_URL (log: $work/moto.log)"
else
  [[ -n ${AWS_PROFILE:-} ]] || { echo "--real needs AWS_PROFILE (the account to deploy to)" >&2; exit 1; }
fi

# what moto's CloudFormation leaves out: the alias and the alarm, made as the template says
moto_fixups() {
  $real && return 0
  "$py" - <<'EOF'
import boto3, os
for r in ["us-east-1", "eu-west-1", "ap-southeast-2"]:
    c = lambda s: boto3.client(s, region_name=r, endpoint_url=os.environ["AWS_ENDPOINT_URL"])
    cf, lam, cw = c("cloudformation"), c("lambda"), c("cloudwatch")
    fn = [o["OutputValue"] for o in cf.describe_stacks(StackName="hello-regions")["Stacks"][0].get("Outputs", [])] or \
         [x["PhysicalResourceId"] for x in cf.list_stack_resources(StackName="hello-regions")["StackResourceSummaries"]
          if x["ResourceType"] == "AWS::Lambda::Function"]
    fn = fn[0]
    if not lam.list_aliases(FunctionName=fn)["Aliases"]:
        lam.create_alias(FunctionName=fn, Name="live", FunctionVersion="1")
    cw.put_metric_alarm(AlarmName="hello-regions-errors", Namespace="AWS/Lambda", MetricName="Errors",
        Statistic="Sum", Period=60, EvaluationPeriods=1, Threshold=0, ComparisonOperator="GreaterThanThreshold",
        Dimensions=[{"Name": "FunctionName", "Value": fn}, {"Name": "Resource", "Value": fn + ":live"}])
    cw.set_alarm_state(AlarmName="hello-regions-errors", StateValue="OK", StateReason="no errors")
    print(f"moto: {r}: alias {fn}:live -> 1 and alarm hello-regions-errors made")
EOF
}

# moto: the errors a canary of release 3 would raise on AWS, as the alarm's state
trip_pid=
moto_trip_alarm() {
  $real && return 0
  "$py" - <<'EOF' &
import boto3, os, time
c = lambda s: boto3.client(s, region_name="us-east-1", endpoint_url=os.environ["AWS_ENDPOINT_URL"])
lam, cw = c("lambda"), c("cloudwatch")
fn = lam.list_functions()["Functions"][0]["FunctionName"]
end = time.time() + 120
while time.time() < end:
    a = lam.get_alias(FunctionName=fn, Name="live")
    if a.get("RoutingConfig", {}).get("AdditionalVersionWeights"):
        cw.set_alarm_state(AlarmName="hello-regions-errors", StateValue="ALARM", StateReason="errors in the canary")
        break
    time.sleep(0.2)
EOF
  trip_pid=$!
}

cd "$work/app"
git="git -c user.email=demo@example.com -c user.name=Demo"
$git init -q -b main
$git add .
$git commit -q -m "hello-regions release 1"
started=$(date +%s)

say "Bootstrap: each region's artifact bucket"
"$meridian" bootstrap meridian.yaml

say "Release 1: create the stacks"
"$meridian" run meridian.yaml --time-scale $scale --skip-windows
moto_fixups

say "Release 2: the live alias shifts 10% -> 100% in every region"
sed -i 's/const RELEASE = "1";/const RELEASE = "2";/' src/index.js
$git commit -q -am "hello-regions release 2"
"$meridian" run meridian.yaml --time-scale $scale --skip-windows -v 2>&1 |
  grep -E '\] \[[a-z0-9-]+ d-|release rel-|^execution ' || true

say "Release 3: a bug; the errors alarm of the canary in us-east-1 rolls it back"
sed -i 's|^exports.handler = async (event) => {|exports.handler = async (event) => {\n  if (event.user) throw new Error(`profile of ${event.user} not found`); // the bug|' src/index.js
$git commit -q -am "hello-regions release 3"
moto_trip_alarm
if "$meridian" run meridian.yaml --time-scale $scale --skip-windows -v 2>&1 |
  grep -E '\] \[[a-z0-9-]+ d-|release rel-|^execution '; then :; fi
[[ -z $trip_pid ]] || kill "$trip_pid" 2>/dev/null || true

say "What is live where"
"$meridian" releases hello-regions

say "Done in $(($(date +%s) - started)) s. The IAM policy this needs: $meridian bootstrap meridian.yaml --print-policy"
echo "  export MERIDIAN_DATA_DIR=$work/data"
