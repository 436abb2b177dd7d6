#!/usr/bin/env bash
# Deploys the fleet's stack in every region (fleet.json, or the comma-separated regions given as $1),
# makes the fleet's claim certificate in each (its key is made here, with openssl, and never sent),
# fetches the Jobs signing public key, and prints what a box's bundle needs.
# Needs: AWS credentials for the fleet's account, the AWS CLI v2, openssl, and `cdk bootstrap` once per
# account and region. Files go to out/<region>/; the claim key is written with mode 0600.
set -euo pipefail
cd "$(dirname "$0")/.."

regions=${1:-$(node -e 'console.log(require("./fleet.json").regions.join(","))')}
template=$(node -e 'console.log(require("./fleet.json").templateName)')
command -v aws >/dev/null || { echo "deploy: the AWS CLI v2 is needed (aws)" >&2; exit 1; }
aws sts get-caller-identity --query Account --output text >/dev/null || {
  echo "deploy: no AWS credentials" >&2
  exit 1
}

npx cdk deploy --all --require-approval never --no-notices -c "regions=${regions}" \
  --outputs-file cdk.out/outputs.json

IFS=',' read -r -a list <<<"${regions}"
for region in "${list[@]}"; do
  out="out/${region}"
  mkdir -p "${out}"
  output() {
    node -e 'const o = require("./cdk.out/outputs.json")[process.argv[1]]; console.log(o[process.argv[2]]);' \
      "Attache-${region}" "$1"
  }
  endpoint=$(aws iot describe-endpoint --endpoint-type iot:Data-ATS --region "${region}" \
    --query endpointAddress --output text)
  if [ ! -s "${out}/claim.crt" ]; then
    (umask 077 && openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes \
      -keyout "${out}/claim.key" -subj "/CN=attache-claim" -out "${out}/claim.csr" 2>/dev/null)
    arn=$(aws iot create-certificate-from-csr --region "${region}" --set-as-active \
      --certificate-signing-request "fileb://${out}/claim.csr" \
      --certificate-pem-outfile "${out}/claim.crt" --query certificateArn --output text)
    aws iot attach-policy --region "${region}" --policy-name attache-claim --target "${arn}"
    rm -f "${out}/claim.csr"
  fi
  aws kms get-public-key --region "${region}" --key-id "$(output SigningKeyArn)" \
    --query PublicKey --output text | base64 -d |
    openssl pkey -pubin -inform DER -out "${out}/jobs-signing.pub.pem"
  cat >"${out}/fleet.json" <<EOF
{"region": "${region}", "endpoint": "${endpoint}", "templateName": "${template}",
 "claimCertFile": "claim.crt", "claimKeyFile": "claim.key", "jobsSigningPublicKey": "jobs-signing.pub.pem",
 "artifactBucket": "$(output ArtifactBucket)", "ingestBucket": "$(output IngestBucket)",
 "allowList": "$(output AllowList)", "jobsPresignRoleArn": "$(output JobsPresignRoleArn)"}
EOF
  cat <<EOF

== ${region}: what a box needs (${out}/)
  uplink.endpoint        ${endpoint}
  uplink.allowedRegions  ["${region}"]
  provisioning template  ${template}
  claim                  ${out}/claim.crt, ${out}/claim.key (fleet-wide; Fleet Provisioning only)
  Jobs signing key       ${out}/jobs-signing.pub.pem
  serial allow-list      $(output AllowList) (upload before flashing: one serial a line)
EOF
done
