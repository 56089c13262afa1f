# Shared helpers for the set-up scripts: say what happens, fail loudly with what to do.
say() { printf '\033[1m==>\033[0m %s\n' "$*"; }
die() { printf '\033[31merror:\033[0m %s\n' "$*" >&2; exit 1; }
is_root() { [ "$(id -u)" = 0 ]; }
apt_updated=""
apt_install() {
  is_root || die "$* missing; install it as root: apt-get install -y $*"
  if [ -z "$apt_updated" ]; then
    say "apt-get update"
    apt-get update -qq >/dev/null || die "apt-get update failed"
    apt_updated=1
  fi
  say "installing $*"
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$@" >/dev/null || die "apt-get install $* failed"
}

# The data folder (settings.DATA_DIR) holds the database, secrets and logs: its owner's alone (0700, files 0600).
# Only what is made here gets `umask 077`: a umask for the whole script would reach files that go into images
# (the base image, build contexts), which must keep their usual modes.
data_dir="${CONSOLE_DATA_DIR:-var}"
private_data_dir() {
  (umask 077 && mkdir -p "$data_dir/log")
  chmod 700 "$data_dir" "$data_dir/log"
  # What an older version left readable by everyone: logs, the SQLite database (and its journals), secrets.
  find "$data_dir" -maxdepth 2 -type f \( -name '*.log' -o -name '*.sqlite3*' -o -name secret_key \
    -o -name encryption_key \) -perm /077 -exec chmod go-rwx {} +
}
# A log file only its owner may read, made before a redirection appends to it (the shell would make it 0644).
private_log() {
  (umask 077 && : >>"$1")
  chmod 600 "$1"
}

# One console per data folder: two would share its database, broker, registry storage and logs. run.sh holds a lock
# on run/console.pid for as long as it runs; what it starts inherits the lock, so the folder is free again only once
# every one of them has exited. The file names the pid of the run.sh that holds it.
lock_data_dir() {
  command -v flock >/dev/null || return 0
  mkdir -p "$data_dir/run"
  exec {data_dir_lock}>>"$data_dir/run/console.pid"
  if ! flock -n "$data_dir_lock"; then
    die "another console runs on the data folder $data_dir (pid $(cat "$data_dir/run/console.pid" 2>/dev/null)," \
      "or what it started):" \
      "stop it, or give this one its own data folder and ports (README \"make run\"):" \
      "CONSOLE_DATA_DIR=/srv/console2 PORT=8001 REGISTRY_ADDRESS=127.0.0.1:5001 make run"
  fi
  echo "$$" >"$data_dir/run/console.pid"
}
