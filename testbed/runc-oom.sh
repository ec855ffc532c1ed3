#!/bin/sh
# runc for the test bed's Docker nodes (dockerd's default runtime there, see testbed/up.sh): clamps the
# container's oom_score_adj to runc's own, then runs /usr/sbin/runc with the same arguments.
#
# Why: root on this kind of VM lacks CAP_SYS_RESOURCE, so no process may lower its oom_score_adj, and the
# kubelet asks dockershim for -998 on every pod sandbox (-997 for Guaranteed containers): runc then fails
# with "can't get final child's PID from pipe". containerd nodes have restrict_oom_score_adj for this;
# dockerd has no such option, hence this wrapper. Only `create`/`run` carry a bundle; everything else
# passes through untouched. Where lowering is allowed (own score <= the wanted one) nothing changes.
bundle='' prev=''
for a in "$@"; do
  case $prev in --bundle|-b) bundle=$a ;; esac
  case $a in --bundle=*) bundle=${a#--bundle=} ;; esac
  prev=$a
done
if [ -n "$bundle" ] && [ -f "$bundle/config.json" ]; then
  own=$(cat /proc/self/oom_score_adj)
  want=$(grep -o '"oomScoreAdj": *-\{0,1\}[0-9]*' "$bundle/config.json" | head -1 | grep -o -- '-\{0,1\}[0-9]*$')
  if [ -n "$want" ] && [ "$want" -lt "$own" ]; then
    sed -i "s/\"oomScoreAdj\": *$want\([,}]\)/\"oomScoreAdj\":$own\1/" "$bundle/config.json"
  fi
fi
exec /usr/sbin/runc "$@"
