#!/usr/bin/env bash
# After scripts/install-demo (inside scripts/sandbox, or in the VM): the demo login reaches
# JupyterLab with the demo tutorials, as a browser would: the site root, the auto-login POST, the
# lab page. alice may choose between the demo's profiles: on the choice page (a first visit, or
# no server running) she chooses "research", and her server must say so.
#
#   demo_visit.sh [SITE]    SITE: http://localhost (the default) or https://localhost, where the
#                           certificate is Debian's snakeoil (not checked: a test of the vhost)
set -euo pipefail
site=${1:-http://localhost}
pw=$(cat /etc/hydra/demo-credentials)
jar=$(mktemp)
curl() { command curl --insecure "$@"; }
page=$(curl -fsS -u "alice:$pw" -c "$jar" "$site/")
chose=""
if grep -q 'name="profile"' <<<"$page"; then
    for profile in course research; do
        grep -q "name=\"profile\" value=\"$profile\"" <<<"$page" || { echo "the choice page does not offer $profile: $page" >&2; exit 1; }
    done
    xsrf=$(sed -n 's/.*name="_xsrf" value="\([^"]*\)".*/\1/p' <<<"$page")
    page=$(curl -fsS -u "alice:$pw" -b "$jar" -c "$jar" -H "Origin: $site" \
        --data-urlencode "profile=research" --data-urlencode "_xsrf=$xsrf" "$site/hydra/profile")
    chose=research
fi
action=$(sed -n 's/.*<form id="login" method="post" action="\([^"]*\)".*/\1/p' <<<"$page")
token=$(sed -n 's/.*name="password" value="\([0-9a-f]*\)".*/\1/p' <<<"$page")
xsrf=$(sed -n 's/.*name="_xsrf" value="\([0-9a-f]*\)".*/\1/p' <<<"$page")
[ -n "$action" ] && [ -n "$token" ] && [ -n "$xsrf" ] || { echo "no auto-login form in: $page" >&2; exit 1; }
status=$(curl -sS -u "alice:$pw" -b "$jar" -c "$jar" -o /dev/null -w '%{http_code}' -H "Origin: $site" \
    --data-urlencode "password=$token" --data-urlencode "_xsrf=$xsrf" "$site$action")
[ "$status" = 302 ] || { echo "login POST answered $status" >&2; exit 1; }
status=$(curl -sS -u "alice:$pw" -b "$jar" -o /dev/null -w '%{http_code}' "$site/user/alice/lab")
[ "$status" = 200 ] || { echo "lab answered $status" >&2; exit 1; }
ls /home/alice/tutorials/01-welcome.ipynb >/dev/null
if [ -n "$chose" ]; then
    status=$(runuser -u alice -- ipynb-launch status --json)
    grep -q "\"profile\" *: *\"$chose\"" <<<"$status" || { echo "she chose $chose, her server says: $status" >&2; exit 1; }
    echo "alice chose the profile $chose on the choice page"
fi
echo "alice reached her lab with the demo tutorials"
