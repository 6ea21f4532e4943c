//! Placement throughput and decision latency on one core, in steady state: a cluster filled to a
//! given level keeps receiving a realistic mix of requests while random earlier instances leave,
//! so that fill stays constant. Prints a table: hosts, fill, placements/s, p50/p99/max latency.
//!
//! `cargo bench -p feiyun-scheduler --bench throughput`

use std::time::Instant;

use feiyun_scheduler::cluster::{Ask, Policy};

mod common;
use common::{draw, filled, Rng};

fn main() {
    if std::env::args().any(|a| a == "--list") {
        return;
    }
    println!("| hosts | fill | instances | placements/s | p50 µs | p99 µs | max µs |");
    println!("|---:|---:|---:|---:|---:|---:|---:|");
    for hosts in [1_000usize, 10_000, 50_000] {
        for fill in [0.3, 0.7, 0.9] {
            let mut rng = Rng::new(42);
            let (mut c, mut live) = filled(hosts, fill, Policy::Feiyun, &mut rng);
            let ops = 200_000usize;
            let mut lat = Vec::with_capacity(ops);
            let mut placed = 0u64;
            let start = Instant::now();
            for _ in 0..ops {
                // One departure, one arrival.
                if !live.is_empty() {
                    let k = rng.below(live.len() as u64) as usize;
                    let (h, d) = live.swap_remove(k);
                    c.release(h, &d, None);
                }
                let ask = Ask::new(draw(&mut rng), Policy::Feiyun);
                let t0 = Instant::now();
                let r = c.place(&ask, 1, 1);
                lat.push(t0.elapsed().as_nanos() as u64);
                if let Ok(h) = r {
                    placed += 1;
                    live.push((h[0], ask.demand));
                }
            }
            let wall = start.elapsed().as_secs_f64();
            let decide: f64 = lat.iter().sum::<u64>() as f64 / 1e9;
            lat.sort_unstable();
            let p = |q: f64| lat[((lat.len() - 1) as f64 * q) as usize] as f64 / 1000.0;
            println!(
                "| {hosts} | {:.0}% | {} | {:.0} | {:.2} | {:.2} | {:.1} |",
                fill * 100.0,
                live.len(),
                ops as f64 / decide,
                p(0.5),
                p(0.99),
                p(1.0)
            );
            let _ = (placed, wall);
        }
    }
}
