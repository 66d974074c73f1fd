#!/bin/sh
# Writes the fake /sys + /proc/cpuinfo trees that tests/sysfs/test_sysinfo.py
# points EEX_SYSFS_ROOT at. The layouts (which files exist, their formats) are
# those of the boards' Linux kernels; the values are representative of each
# board, not a capture of one unit. Run from anywhere; rewrites the trees.
#   rpi4/            Raspberry Pi 4 Model B (BCM2711, 4x Cortex-A72, one cpufreq policy)
#   rpi4-hot/        the same board's snapshot files after a hot run (1000 MHz, 82.5 C)
#   rk3399/          RK3399 (Rock Pi 4B): 4x Cortex-A53 + 2x Cortex-A72, two policies
#   rk3399-throttled/ its snapshot files after a throttled run
#   rk3588/          RK3588 (ROCK 5B): 4x Cortex-A55 + 4x Cortex-A76 in three policies
#   missing/         a machine exposing little: no cpufreq except one file (and one
#                    that is not a number), an empty cpu_capacity, a thermal zone
#                    without temp, no model names
set -e
cd "$(dirname "$0")"
rm -rf rpi4 rpi4-hot rk3399 rk3399-throttled rk3588 missing

put() { mkdir -p "$(dirname "$1")"; printf '%s\n' "$2" > "$1"; }
C=sys/devices/system/cpu

# ---- Raspberry Pi 4 -----------------------------------------------------------
R=rpi4
put $R/$C/online 0-3
put $R/$C/possible 0-3
: > $R/cpuinfo.tmp
for i in 0 1 2 3; do
  put $R/$C/cpu$i/cpufreq/cpuinfo_max_freq 1800000
  put $R/$C/cpu$i/cpufreq/cpuinfo_min_freq 600000
  put $R/$C/cpu$i/cpufreq/scaling_cur_freq 1800000
  put $R/$C/cpu$i/cpufreq/scaling_governor ondemand
  put $R/$C/cpu$i/cpufreq/related_cpus "0 1 2 3"
  put $R/$C/cpu$i/cpu_capacity 1024
  printf 'processor\t: %d\nBogoMIPS\t: 108.00\nFeatures\t: fp asimd evtstrm crc32 cpuid\nCPU implementer\t: 0x41\nCPU architecture: 8\nCPU variant\t: 0x0\nCPU part\t: 0xd08\nCPU revision\t: 3\n\n' $i >> $R/cpuinfo.tmp
done
printf 'Hardware\t: BCM2835\nRevision\t: c03114\nSerial\t\t: 100000001a2b3c4d\nModel\t\t: Raspberry Pi 4 Model B Rev 1.4\n' >> $R/cpuinfo.tmp
mkdir -p $R/proc && mv $R/cpuinfo.tmp $R/proc/cpuinfo
put $R/sys/class/thermal/thermal_zone0/type cpu-thermal
put $R/sys/class/thermal/thermal_zone0/temp 47236
mkdir -p $R/sys/firmware/devicetree/base
printf 'Raspberry Pi 4 Model B Rev 1.4\0' > $R/sys/firmware/devicetree/base/model

R=rpi4-hot   # only what a snapshot reads
for i in 0 1 2 3; do put $R/$C/cpu$i/cpufreq/scaling_cur_freq 1000000; done
put $R/sys/class/thermal/thermal_zone0/temp 82500

# ---- RK3399 -------------------------------------------------------------------
R=rk3399
put $R/$C/online 0-5
put $R/$C/possible 0-5
: > $R/cpuinfo.tmp
for i in 0 1 2 3 4 5; do
  if [ $i -lt 4 ]; then max=1416000 cap=485 part=0xd03 rev=4 rel="0 1 2 3"
  else max=1800000 cap=1024 part=0xd08 rev=2 rel="4 5"; fi
  put $R/$C/cpu$i/cpufreq/cpuinfo_max_freq $max
  put $R/$C/cpu$i/cpufreq/cpuinfo_min_freq 408000
  put $R/$C/cpu$i/cpufreq/scaling_cur_freq $max
  put $R/$C/cpu$i/cpufreq/scaling_governor schedutil
  put $R/$C/cpu$i/cpufreq/related_cpus "$rel"
  put $R/$C/cpu$i/cpu_capacity $cap
  printf 'processor\t: %d\nBogoMIPS\t: 48.00\nFeatures\t: fp asimd evtstrm aes pmull sha1 sha2 crc32 cpuid\nCPU implementer\t: 0x41\nCPU architecture: 8\nCPU variant\t: 0x0\nCPU part\t: %s\nCPU revision\t: %d\n\n' $i $part $rev >> $R/cpuinfo.tmp
done
mkdir -p $R/proc && mv $R/cpuinfo.tmp $R/proc/cpuinfo
put $R/sys/class/thermal/thermal_zone0/type cpu-thermal
put $R/sys/class/thermal/thermal_zone0/temp 51111
put $R/sys/class/thermal/thermal_zone1/type gpu-thermal
put $R/sys/class/thermal/thermal_zone1/temp 49375
mkdir -p $R/sys/firmware/devicetree/base
printf 'Radxa ROCK Pi 4B\0' > $R/sys/firmware/devicetree/base/model

R=rk3399-throttled   # both clusters capped at 90 C
for i in 0 1 2 3; do put $R/$C/cpu$i/cpufreq/scaling_cur_freq 1008000; done
for i in 4 5; do put $R/$C/cpu$i/cpufreq/scaling_cur_freq 1200000; done
put $R/sys/class/thermal/thermal_zone0/temp 90555
put $R/sys/class/thermal/thermal_zone1/temp 86250

# ---- RK3588 --------------------------------------------------------------------
# three cpufreq policies (0-3, 4-5, 6-7); the two A76 pairs have the same limits,
# so eex lists them as one cluster of alike cores
R=rk3588
put $R/$C/online 0-7
: > $R/cpuinfo.tmp
for i in 0 1 2 3 4 5 6 7; do
  if [ $i -lt 4 ]; then max=1800000 cap=414 part=0xd05 rel="0 1 2 3"
  else max=2256000 cap=1024 part=0xd0b rel="$(( i / 2 * 2 )) $(( i / 2 * 2 + 1 ))"; fi
  put $R/$C/cpu$i/cpufreq/cpuinfo_max_freq $max
  put $R/$C/cpu$i/cpufreq/cpuinfo_min_freq 408000
  put $R/$C/cpu$i/cpufreq/scaling_cur_freq $max
  put $R/$C/cpu$i/cpufreq/scaling_governor performance
  put $R/$C/cpu$i/cpufreq/related_cpus "$rel"
  put $R/$C/cpu$i/cpu_capacity $cap
  printf 'processor\t: %d\nBogoMIPS\t: 48.00\nFeatures\t: fp asimd evtstrm aes pmull sha1 sha2 crc32 atomics fphp asimdhp cpuid asimdrdm lrcpc dcpop asimddp\nCPU implementer\t: 0x41\nCPU architecture: 8\nCPU variant\t: 0x%d\nCPU part\t: %s\nCPU revision\t: 0\n\n' $i $(( i < 4 ? 2 : 4 )) $part >> $R/cpuinfo.tmp
done
mkdir -p $R/proc && mv $R/cpuinfo.tmp $R/proc/cpuinfo
z=0
for t in soc-thermal bigcore0-thermal bigcore1-thermal littlecore-thermal center-thermal gpu-thermal npu-thermal; do
  put $R/sys/class/thermal/thermal_zone$z/type $t
  put $R/sys/class/thermal/thermal_zone$z/temp $(( 41000 + z * 925 ))
  z=$(( z + 1 ))
done
mkdir -p $R/sys/firmware/devicetree/base
printf 'Radxa ROCK 5B\0' > $R/sys/firmware/devicetree/base/model

# ---- files missing --------------------------------------------------------------
R=missing
put $R/$C/online 0-3
mkdir -p $R/proc
printf 'processor\t: 0\n\nprocessor\t: 1\n\nprocessor\t: 2\n\nprocessor\t: 3\n\n' > $R/proc/cpuinfo
put $R/$C/cpu0/cpufreq/cpuinfo_max_freq 2000000
put $R/$C/cpu1/cpufreq/cpuinfo_max_freq "<unsupported>"   # unreadable as a number: unknown
mkdir -p $R/$C/cpu2 && : > $R/$C/cpu2/cpu_capacity     # empty
put $R/sys/class/thermal/thermal_zone0/type soc-thermal
echo "make_trees: wrote rpi4 rpi4-hot rk3399 rk3399-throttled rk3588 missing"
