#!/usr/bin/env bash
# certrelay SSM document, step 1 of 2: fetch the exported bundle (by version) and its passphrase
# into a private work directory. Parameters arrive as SSM_* environment variables; nothing here
# prints key material or the passphrase.
set -euo pipefail
umask 077
work="${SSM_WorkDir}"
rm -rf "${work}"
mkdir -p "${work}"
# The bucket and secret are the stack's, in its Region (the hub's, for a server in a member
# account in another Region): the secret's ARN names it.
region="$(cut -d: -f4 <<< "${SSM_SecretArn}")"
fetch() {
  local key="$1" version="$2" file="$3"
  if [ "${version}" = "null" ]; then
    aws s3api get-object --region "${region}" --bucket "${SSM_Bucket}" --key "${key}" \
      "${work}/${file}" >/dev/null
  else
    aws s3api get-object --region "${region}" --bucket "${SSM_Bucket}" --key "${key}" \
      --version-id "${version}" "${work}/${file}" >/dev/null
  fi
}
fetch "${SSM_CertKey}" "${SSM_CertVersion}" cert.pem
fetch "${SSM_ChainKey}" "${SSM_ChainVersion}" chain.pem
fetch "${SSM_KeyKey}" "${SSM_KeyVersion}" privkey.pem
if [ "${SSM_SecretVersion}" = "null" ]; then
  aws secretsmanager get-secret-value --region "${region}" --secret-id "${SSM_SecretArn}" \
    --query SecretString --output text > "${work}/passphrase"
else
  aws secretsmanager get-secret-value --region "${region}" --secret-id "${SSM_SecretArn}" \
    --version-id "${SSM_SecretVersion}" --query SecretString --output text > "${work}/passphrase"
fi
echo "FETCHED ${SSM_CertKey}"
