#!/usr/bin/env bash
# certrelay: install a renewed certificate on this host.
#
# The install step of the stack's own SSM Command document. An earlier step has fetched
# cert.pem, chain.pem, privkey.pem (encrypted PKCS#8) and passphrase (mode 0600) into
# SSM_WorkDir. Document parameters arrive as SSM_<Name> environment variables (interpolationType
# ENV_VAR); they are never pasted into this text. Reload and ConfigTest carry adapter names
# (nginx, apache, haproxy, envoy, systemd:<unit>, script:<path>), never command lines: this
# script maps each name to fixed argument vectors, run without a shell. A script: path must lie
# under a directory listed in /etc/certrelay/hook-dirs, which only this host's root can write.
# See ssm/README.md.
#
# stdout carries exactly one status line; progress goes to stderr:
#   INSTALLED <sha256> <cert path>      exit 0
#   REFUSED: <reason>                   exit 2  nothing installed, nothing reloaded
#   ROLLED BACK: <reason>               exit 3  previous files restored and reloaded
#   ROLLBACK FAILED: <reason>; <what>   exit 4  the host needs a person
# The decrypted key lives only in a private temporary directory removed on exit, and in the
# key file itself. Key material and the passphrase are never printed.

# SSM may start this with sh; continue in bash before anything bash-only is parsed.
if [ -z "${BASH_VERSION:-}" ]; then exec bash "$0" "$@"; fi

set -euo pipefail
umask 077
export LC_ALL=C
PATH="${PATH:+$PATH:}/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

readonly EXIT_REFUSED=2 EXIT_ROLLED_BACK=3 EXIT_ROLLBACK_FAILED=4
readonly COMMAND_TIMEOUT=120 # seconds for ConfigTest and Reload
# The host's own list of directories whose executables script: adapters may run (one absolute
# path a line). The variable is for tests: the SSM agent's environment sets it only if root does.
readonly HOOK_DIRS_FILE=${CERTRELAY_HOOK_DIRS_FILE:-/etc/certrelay/hook-dirs}
readonly ATTEMPT_TIMEOUT=5   # seconds for one TLS handshake while verifying

phase=checking # checking: nothing touched yet | installing: rollback on failure | finished
status_line=""
exit_status=0
scratch=""                 # private directory holding the decrypted key
staged=""                  # the temporary file put_file wrote last
declare -a pending_tmp=()  # temporary files in the target directories
declare -a installed=()    # live paths this run has replaced or created
declare -A had_previous=() # live path -> 1 when this run saved the previous file to <path>.bak

note() { printf 'certrelay: %s\n' "$*" >&2; }

# --- exit handling -------------------------------------------------------------------------

# shellcheck disable=SC2329 # called from on_exit, which the EXIT trap runs
remove_temporaries() {
  local tmp
  for tmp in ${pending_tmp[@]+"${pending_tmp[@]}"}; do rm -f -- "$tmp"; done
  pending_tmp=()
  if [[ -n $scratch ]]; then rm -rf -- "$scratch"; fi
  scratch=""
}

# shellcheck disable=SC2329 # run by the EXIT trap
on_exit() {
  local rc=$?
  set +e
  trap '' INT TERM HUP
  if [[ $phase == installing ]]; then
    roll_back "stopped unexpectedly (exit $rc)"
  elif [[ $phase == checking ]]; then
    status_line="REFUSED: stopped unexpectedly (exit $rc)"
    exit_status=$EXIT_REFUSED
  fi
  remove_temporaries
  printf '%s\n' "$status_line"
  exit "$exit_status"
}
trap on_exit EXIT
trap 'fail "interrupted by SIGINT"' INT
trap 'fail "interrupted by SIGTERM"' TERM
trap 'fail "interrupted by SIGHUP"' HUP

# fail REASON: refuse if nothing has been touched yet, otherwise roll back; then exit non-zero.
# Never call it inside $(...): it must run in the main shell.
fail() {
  local reason=${*//$'\n'/ }
  set +e
  trap '' INT TERM HUP
  if [[ $phase == installing ]]; then
    roll_back "$reason"
  else
    status_line="REFUSED: $reason"
    exit_status=$EXIT_REFUSED
  fi
  phase=finished
  exit "$exit_status"
}

# --- helpers -------------------------------------------------------------------------------

# Lowercase sha256 hex of the DER form of the first PEM certificate on stdin (openssl prints
# it as "sha256 Fingerprint=AB:CD:..."; OpenSSL 1.1 spells it "SHA256 Fingerprint=").
fingerprint_of() {
  local digest
  digest=$(openssl x509 -noout -fingerprint -sha256 2>/dev/null) || return 1
  digest=${digest#*=}
  digest=${digest//:/}
  digest=${digest,,}
  [[ $digest =~ ^[0-9a-f]{64}$ ]] || return 1
  printf '%s\n' "$digest"
}

# run_command ARG...: run an argument vector without a shell, output to stderr.
run_command() {
  note "running: $*"
  timeout "$COMMAND_TIMEOUT" "$@" </dev/null >&2
}

# The adapters. Each maps to fixed commands (ssm/README.md has the table):
#   nginx          test: nginx -t -q                                reload: systemctl reload nginx
#   apache         test: apachectl configtest                       reload: systemctl reload
#                  apache2 (Debian, Ubuntu) or httpd (RHEL, Amazon Linux), whichever unit exists
#   haproxy        test: haproxy -c -q -f /etc/haproxy/haproxy.cfg reload: systemctl reload haproxy
#   envoy          test: envoy --mode validate -c /etc/envoy/envoy.yaml
#                                                        reload: systemctl reload envoy
#   systemd:<unit> test: none                                       reload: systemctl reload <unit>
#   script:<path>  test: the ConfigTest script, if given            reload: <path>, no arguments

# config_test: run the adapter's config test (nothing for systemd: and a script: without one).
config_test() {
  case $reload in
    nginx) run_command nginx -t -q ;;
    apache) run_command apachectl configtest ;;
    haproxy) run_command haproxy -c -q -f /etc/haproxy/haproxy.cfg ;;
    envoy) run_command envoy --mode validate -c /etc/envoy/envoy.yaml ;;
    script:*) if [[ -n $test_script ]]; then run_command "${test_script#script:}"; fi ;;
    *) ;;
  esac
}

# reload_service: run the adapter's reload.
reload_service() {
  case $reload in
    nginx | haproxy | envoy) run_command systemctl reload "$reload" ;;
    apache)
      if systemctl cat apache2.service >/dev/null 2>&1; then
        run_command systemctl reload apache2
      else
        run_command systemctl reload httpd
      fi
      ;;
    systemd:*) run_command systemctl reload "${reload#systemd:}" ;;
    script:*) run_command "${reload#script:}" ;;
    *) return 126 ;;
  esac
}

# trusted_hook PATH: PATH is an executable regular file under a directory listed in the host's
# hook-dirs file, and neither it nor a directory from the listed one down to it is writable by
# anyone but its owner, root or this user. Prints the problem and fails otherwise.
trusted_hook() {
  local path=$1 base="" line dir
  if [[ ! -f $HOOK_DIRS_FILE ]]; then
    printf '%s does not exist, so no hook directory is listed' "$HOOK_DIRS_FILE"
    return 1
  fi
  if unsafe "$HOOK_DIRS_FILE"; then
    printf '%s is writable by others' "$HOOK_DIRS_FILE"
    return 1
  fi
  while IFS= read -r line || [[ -n $line ]]; do
    line=${line%/}
    [[ $line =~ ^(/[A-Za-z0-9._@+-]+)+$ && $path == "$line"/* ]] && base=$line
  done <"$HOOK_DIRS_FILE"
  if [[ -z $base ]]; then
    printf '%s is not under a directory listed in %s' "$path" "$HOOK_DIRS_FILE"
    return 1
  fi
  if [[ -L $path || ! -f $path || ! -x $path ]]; then
    printf '%s is not an executable regular file' "$path"
    return 1
  fi
  dir=$path
  while [[ $dir == "$base" || $dir == "$base"/* ]]; do
    if [[ -L $dir ]] || unsafe "$dir"; then
      printf '%s is a link, writable by others or owned by someone else' "$dir"
      return 1
    fi
    dir=${dir%/*}
  done
}

# unsafe PATH: true when PATH is owned by neither root nor this user, or is group/other-writable.
unsafe() {
  local owner mode
  read -r owner mode < <(stat -c '%u %a' -- "$1" 2>/dev/null) || return 0
  [[ $owner == 0 || $owner == "$EUID" ]] || return 0
  (((8#$mode & 8#022) != 0))
}

# explain_exit STATUS: words for a run_command status.
explain_exit() {
  case $1 in
    124) printf 'timed out after %ss' "$COMMAND_TIMEOUT" ;;
    126 | 127) printf 'could not be started (exit %s)' "$1" ;;
    *) printf 'exit %s' "$1" ;;
  esac
}

# put_file SOURCE DEST MODE: write SOURCE to a new temporary file beside DEST and print its
# name. MODE "keep" copies mode and ownership from SOURCE; otherwise chmod MODE and, as root,
# take owner and group from the current DEST if there is one.
put_file() {
  local src=$1 dest=$2 mode=$3 tmp directory=${2%/*} # dest's directory, as dirname prints it
  tmp=$(mktemp "${directory:-/}/.certrelay.XXXXXX") || return 1
  pending_tmp+=("$tmp")
  if [[ $mode == keep ]]; then
    cp -p -- "$src" "$tmp" || return 1
  else
    cat -- "$src" >"$tmp" || return 1
    chmod "$mode" -- "$tmp" || return 1
    if [[ $EUID -eq 0 && -e $dest ]]; then chown --reference="$dest" -- "$tmp" || return 1; fi
  fi
  staged=$tmp
}

# move_into_place TMP DEST: atomic rename within one directory.
move_into_place() {
  mv -f -- "$1" "$2" || return 1
  local kept=() tmp
  for tmp in ${pending_tmp[@]+"${pending_tmp[@]}"}; do [[ $tmp == "$1" ]] || kept+=("$tmp"); done
  pending_tmp=(${kept[@]+"${kept[@]}"})
}

# roll_back REASON: put back what this run replaced, reload, and set the status line.
roll_back() {
  local reason=$1 path problems=""
  phase=finished
  for path in ${installed[@]+"${installed[@]}"}; do
    if [[ -n ${had_previous[$path]:-} ]]; then
      if ! { put_file "$path.bak" "$path" keep && move_into_place "$staged" "$path"; }; then
        problems+="; could not restore $path from $path.bak"
      fi
    elif ! rm -f -- "$path"; then
      problems+="; could not remove the new $path"
    fi
  done
  local rc=0
  reload_service || rc=$?
  if ((rc != 0)); then problems+="; the reload after restoring failed ($(explain_exit "$rc"))"; fi
  if [[ -n $problems ]]; then
    status_line="ROLLBACK FAILED: $reason$problems"
    exit_status=$EXIT_ROLLBACK_FAILED
  else
    status_line="ROLLED BACK: $reason"
    exit_status=$EXIT_ROLLED_BACK
  fi
}

# covers SAN NAME: SAN equals NAME, or SAN is *.<rest> and NAME is <one label>.<rest>.
covers() {
  local san=$1 name=$2
  [[ $san == "$name" ]] && return 0
  [[ $san == '*.'* && $name == *.* ]] || return 1
  local label=${name%%.*}
  [[ -n $label && $label != '*' && ${name#*.} == "${san#\*.}" ]]
}

# --- inputs --------------------------------------------------------------------------------
# The document's allowedPattern is the gate; these checks keep the script safe on its own.

work_dir=${SSM_WorkDir:-}
expected_fp=${SSM_ExpectedFingerprint:-}
expected_name=${SSM_ExpectedName:-}
cert_path=${SSM_CertPath:-}
key_path=${SSM_KeyPath:-}
chain_path=${SSM_ChainPath:-}
test_script=${SSM_ConfigTest:-}
reload=${SSM_Reload:-}
verify_host=${SSM_VerifyHost:-127.0.0.1}
verify_port=${SSM_VerifyPort:-}
verify_name=${SSM_VerifyServerName:-}
verify_timeout=${SSM_VerifyTimeout:-20}
min_valid_days=${SSM_MinValidDays:-2}

for name in WorkDir ExpectedFingerprint ExpectedName CertPath KeyPath ChainPath Reload; do
  variable=SSM_$name
  if [[ -z ${!variable:-} ]]; then
    fail "parameter $name is empty (SSM_$name unset; ENV_VAR parameters need SSM Agent 3.3.2746.0+)"
  fi
done

systemd_prefix=systemd:
path_re='^(/\.?[A-Za-z0-9_@+-][A-Za-z0-9._@+-]*)+$'
script_re='^script:(/\.?[A-Za-z0-9_@+-][A-Za-z0-9._@+-]*)+$'
# A systemd unit name has 1-251 characters. Its length is checked apart from the pattern: a
# bounded repetition ({0,250}) is compiled as that many copies, about 3 ms at every run here.
adapter_re='^(nginx|apache|haproxy|envoy|systemd:[A-Za-z0-9][A-Za-z0-9_.@-]*)$'
max_adapter=$((${#systemd_prefix} + 251))
name_re='^(\*\.)?([A-Za-z0-9-]+\.)*[A-Za-z0-9-]+$'
for name in WorkDir CertPath KeyPath ChainPath; do
  variable=SSM_$name
  [[ ${!variable} =~ $path_re ]] || fail "parameter $name must be an absolute path without '..'"
done
[[ $expected_fp =~ ^[0-9a-f]{64}$ ]] || fail "parameter ExpectedFingerprint must be 64 lowercase hex digits"
[[ $expected_name =~ $name_re ]] || fail "parameter ExpectedName must be a DNS name"
if ! { [[ $reload =~ $adapter_re ]] && ((${#reload} <= max_adapter)); } &&
  [[ ! $reload =~ $script_re ]]; then
  fail "parameter Reload must be an adapter: nginx, apache, haproxy, envoy, systemd:<unit> or script:<path>"
fi
if [[ -n $test_script && ! $test_script =~ $script_re ]]; then
  fail "parameter ConfigTest must be empty or script:<absolute path>"
fi
if [[ -n $test_script && $reload != script:* ]]; then
  fail "parameter ConfigTest is only for a script: Reload; the $reload adapter brings its own test"
fi
for hook in "$reload" "$test_script"; do
  if [[ $hook == script:* ]] && ! problem=$(trusted_hook "${hook#script:}"); then
    fail "hook script refused: $problem"
  fi
done
if [[ $cert_path == "$key_path" || $cert_path == "$chain_path" || $key_path == "$chain_path" ]]; then
  fail "CertPath, KeyPath and ChainPath must be three different files"
fi
if [[ ! $verify_timeout =~ ^[0-9]{1,3}$ ]] || ((10#$verify_timeout < 1)); then
  fail "parameter VerifyTimeout must be a number of seconds from 1"
fi
verify_timeout=$((10#$verify_timeout))
if [[ ! $min_valid_days =~ ^[0-9]{1,3}$ ]]; then
  fail "parameter MinValidDays must be a number of days from 0 to 999"
fi
min_valid_days=$((10#$min_valid_days))
if [[ -n $verify_port ]]; then
  if [[ ! $verify_port =~ ^[0-9]{1,5}$ ]] || ((10#$verify_port < 1 || 10#$verify_port > 65535)); then
    fail "parameter VerifyPort must be a port number 1-65535"
  fi
  [[ $verify_host =~ ^[A-Za-z0-9.-]+$ ]] || fail "parameter VerifyHost must be a host name or IPv4 address"
  verify_name=${verify_name:-$expected_name}
  if [[ $verify_name == *'*'* ]]; then
    fail "parameter VerifyServerName is required when ExpectedName is a wildcard"
  fi
  [[ $verify_name =~ ^[A-Za-z0-9.-]+$ ]] || fail "parameter VerifyServerName must be a DNS name"
fi
expected_name=${expected_name,,}

# --- checks: nothing on the host is touched until all of these pass ------------------------

[[ -d $work_dir ]] || fail "WorkDir $work_dir is not a directory"
for file in cert.pem chain.pem privkey.pem passphrase; do
  [[ -f $work_dir/$file && ! -L $work_dir/$file ]] || fail "$file is missing from WorkDir"
done
passphrase_mode=$(stat -c '%a' -- "$work_dir/passphrase") || fail "cannot stat the passphrase file"
if (((8#$passphrase_mode & 8#077) != 0)); then
  fail "the passphrase file is readable by others (mode $passphrase_mode, want 0600)"
fi

# (a) the certificate is the one the workflow exported
actual_fp=$(fingerprint_of <"$work_dir/cert.pem") || fail "cert.pem is not a PEM certificate"
[[ $actual_fp == "$expected_fp" ]] ||
  fail "cert.pem has fingerprint $actual_fp, expected $expected_fp"

# (a2) it stays valid for at least MinValidDays more days (a stale bundle is not installed)
if ! openssl x509 -in "$work_dir/cert.pem" -noout -checkend $((min_valid_days * 86400)) >/dev/null 2>&1; then
  not_after=$(openssl x509 -in "$work_dir/cert.pem" -noout -enddate 2>/dev/null) || true
  fail "cert.pem expires within MinValidDays ($min_valid_days days): ${not_after:-notAfter unreadable}"
fi

# (b) decrypt the key into a private directory; the passphrase stays in its file
# inside the work directory, which the document's finally step removes even if this is killed
scratch=$(mktemp -d "$work_dir/.scratch.XXXXXX") || fail "cannot create a private temporary directory"
plain_key=$scratch/privkey.pem
openssl pkey -in "$work_dir/privkey.pem" -passin "file:$work_dir/passphrase" \
  -out "$plain_key" >/dev/null 2>&1 ||
  fail "privkey.pem cannot be decrypted with the passphrase file"

# (c) the key belongs to the certificate
key_public=$(openssl pkey -in "$plain_key" -pubout 2>/dev/null) || fail "the decrypted key cannot be read"
cert_public=$(openssl x509 -in "$work_dir/cert.pem" -noout -pubkey 2>/dev/null) ||
  fail "cannot read the public key of cert.pem"
[[ $key_public == "$cert_public" ]] || fail "the private key does not match the certificate"

# (d) the chain issues the certificate (the chain is the only trust: no system store)
chain_count=0
block=""
while IFS= read -r line || [[ -n $line ]]; do
  line=${line%$'\r'}
  if [[ $line == "-----BEGIN CERTIFICATE-----" ]]; then block=""; fi
  block+=$line$'\n'
  if [[ $line == "-----END CERTIFICATE-----" ]]; then
    chain_count=$((chain_count + 1))
    chain_fp=$(fingerprint_of <<<"$block") || fail "chain.pem certificate $chain_count cannot be read"
    [[ $chain_fp != "$actual_fp" ]] || fail "chain.pem contains the certificate itself"
  fi
done <"$work_dir/chain.pem"
((chain_count > 0)) || fail "chain.pem holds no certificate"
verify_args=(-partial_chain -CAfile "$work_dir/chain.pem")
verify_help=$(openssl verify -help 2>&1 || true)
if [[ $verify_help == *-no-CApath* ]]; then verify_args+=(-no-CApath); fi
if [[ $verify_help == *-no-CAstore* ]]; then verify_args+=(-no-CAstore); fi
if ! verify_output=$(openssl verify "${verify_args[@]}" "$work_dir/cert.pem" 2>&1); then
  verify_error=$(grep -m1 '^error' <<<"$verify_output" || true)
  fail "chain.pem does not verify cert.pem${verify_error:+ ($verify_error)}"
fi

# (e) the certificate covers the expected name
cert_text=$(openssl x509 -in "$work_dir/cert.pem" -noout -text 2>/dev/null) ||
  fail "cannot read the names in cert.pem"
san_line=""
san_next=""
while IFS= read -r line; do # the line after the first "X509v3 Subject Alternative Name"
  if [[ -n $san_next ]]; then
    san_line=$line
    break
  fi
  if [[ $line == *"X509v3 Subject Alternative Name"* ]]; then san_next=yes; fi
done <<<"$cert_text"
covered=""
IFS=',' read -r -a san_entries <<<"$san_line"
for entry in ${san_entries[@]+"${san_entries[@]}"}; do
  entry=${entry// /}
  if [[ $entry == DNS:* ]] && covers "${entry#DNS:}" "$expected_name"; then covered=yes; fi
done
[[ -n $covered ]] || fail "the certificate's DNS names do not cover $expected_name"

# the targets: existing directories, regular files (or absent), not symbolic links
for path in "$cert_path" "$key_path" "$chain_path"; do
  directory=${path%/*} # as dirname prints it, without a process
  directory=${directory:-/}
  [[ -d $directory && -w $directory ]] || fail "directory $directory does not exist or is not writable"
  [[ ! -L $path ]] || fail "$path is a symbolic link; point the parameter at the real file"
  [[ ! -e $path || -f $path ]] || fail "$path exists and is not a regular file"
done

# a configuration that is already broken is not this certificate's fault
rc=0
config_test || rc=$?
((rc == 0)) || fail "the config test fails before installing ($(explain_exit "$rc"))"

# --- (f) back up, stage beside the targets, then swap --------------------------------------

for path in "$cert_path" "$key_path" "$chain_path"; do
  if [[ -e $path ]]; then
    { put_file "$path" "$path.bak" keep && move_into_place "$staged" "$path.bak"; } ||
      fail "cannot back up $path to $path.bak"
    had_previous[$path]=1
  fi
done

put_file "$work_dir/cert.pem" "$cert_path" 0644 || fail "cannot stage $cert_path"
staged_cert=$staged
put_file "$plain_key" "$key_path" 0600 || fail "cannot stage $key_path"
staged_key=$staged
put_file "$work_dir/chain.pem" "$chain_path" 0644 || fail "cannot stage $chain_path"
staged_chain=$staged

phase=installing
move_into_place "$staged_chain" "$chain_path" || fail "cannot replace $chain_path"
installed+=("$chain_path")
move_into_place "$staged_key" "$key_path" || fail "cannot replace $key_path"
installed+=("$key_path")
move_into_place "$staged_cert" "$cert_path" || fail "cannot replace $cert_path"
installed+=("$cert_path")
rm -rf -- "$scratch"
scratch=""
note "installed $cert_path, $key_path, $chain_path"

# --- (g) config test and reload ------------------------------------------------------------

rc=0
config_test || rc=$?
((rc == 0)) || fail "the config test fails with the new certificate ($(explain_exit "$rc"))"
rc=0
reload_service || rc=$?
((rc == 0)) || fail "the reload failed ($(explain_exit "$rc"))"

# --- (h) the service serves the new certificate --------------------------------------------

if [[ -n $verify_port ]]; then
  deadline=$((SECONDS + verify_timeout))
  seen="no TLS answer"
  served=""
  while ((SECONDS <= deadline)); do
    limit=$((deadline - SECONDS))
    ((limit <= ATTEMPT_TIMEOUT)) || limit=$ATTEMPT_TIMEOUT
    ((limit >= 1)) || limit=1
    handshake=$(timeout "$limit" openssl s_client -connect "$verify_host:$verify_port" \
      -servername "$verify_name" </dev/null 2>/dev/null) || true
    if served=$(fingerprint_of <<<"$handshake"); then
      [[ $served != "$expected_fp" ]] || break
      seen="serves $served"
    fi
    served=""
    if ((SECONDS < deadline)); then sleep 1; else break; fi
  done
  [[ $served == "$expected_fp" ]] ||
    fail "$verify_host:$verify_port ($verify_name) $seen, not $expected_fp, after ${verify_timeout}s"
  note "$verify_host:$verify_port serves $expected_fp"
fi

phase=finished
status_line="INSTALLED $expected_fp $cert_path"
exit_status=0
exit 0
