#!/usr/bin/env bash
# Run the commands of a queue file one after another (a poor man's job queue for screening runs on a shared box).
# Lines are taken from the top as they are started, so more can be appended while it runs.
#   bash tools/queue.sh runs/queue-a.txt &
set -u
q="$1"
while true; do
  line=$(head -n 1 "$q" 2>/dev/null)
  if [ -z "$line" ]; then sleep 20; [ -s "$q" ] || { [ -e "$q.stop" ] && exit 0; continue; }; continue; fi
  sed -i '1d' "$q"
  echo "$(date +%H:%M:%S) START $line" >> "$q.log"
  bash -c "$line"
  echo "$(date +%H:%M:%S) END rc=$? $line" >> "$q.log"
done
