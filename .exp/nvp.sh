# summarize main isolate scavenges of the worker: .exp/nvp.sh file
f=$1
iso=$(grep "gc=s" $f | awk '{for(i=1;i<=NF;i++){split($i,a,"="); v[a[1]]=a[2]} print $1, v["allocated"]}' | sort -k2 -n | tail -1 | cut -d' ' -f1)
grep -F "$iso" $f | grep "gc=s" | awk '{for(i=1;i<=NF;i++){split($i,a,"="); v[a[1]]=a[2]} n++; p+=v["promoted"]; s+=v["pause"]; al+=v["allocated"]; if (v["pause"]>mx) mx=v["pause"]} END {printf "main isolate: %d scavenges, allocated %.1f MB, promoted %.1f MB, pause total %.0f ms max %.1f ms\n", n, al/1e6, p/1e6, s, mx}'
grep -F "$iso" $f | grep -c "gc=mc" | sed 's/^/mark-compacts: /'
