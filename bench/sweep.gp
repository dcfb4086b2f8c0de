# bench/sweep.gp: throughput and p50/p99 latency against key count, from
# sweep.tsv (keys, variant, tps, p50 µs, p99 µs), written by run.sh.
# gnuplot -e "data='sweep.tsv'; out='sweep.svg'" sweep.gp
set terminal svg size 900,700 dynamic font "sans,12" background "white"
set output out
set datafile separator "\t"
set multiplot layout 2,1 title "apikey: pgbench -M prepared, key sent as a parameter"
set logscale x 10
set format x "10^{%L}"
set xlabel "keys in apikey.keys"
set key outside right
set grid
set ylabel "transactions per second"
set yrange [0:*]
plot for [v in "echo_p floor_p readme_p"] \
	data using 1:(strcol(2) eq v ? $3 : NaN) with linespoints title v noenhanced
set ylabel "latency per transaction (µs)"
plot for [v in "echo_p floor_p readme_p"] \
	data using 1:(strcol(2) eq v ? $4 : NaN) with linespoints dashtype 1 title v." p50" noenhanced, \
	for [v in "echo_p floor_p readme_p"] \
	data using 1:(strcol(2) eq v ? $5 : NaN) with linespoints dashtype 2 title v." p99" noenhanced
unset multiplot
