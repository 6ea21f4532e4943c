//! Criterion benchmarks of single placements and batches at 1,000 / 10,000 / 50,000 hosts,
//! 70 % full, in steady state (each placement is released again so the fill level holds).
//!
//! `cargo bench -p feiyun-scheduler --bench placement`

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion};
use feiyun_scheduler::cluster::{Ask, Policy};

mod common;
use common::{draw, filled, Rng};

fn bench(c: &mut Criterion) {
    let mut g = c.benchmark_group("place");
    for hosts in [1_000usize, 10_000, 50_000] {
        let mut rng = Rng::new(7);
        let (mut cluster, _) = filled(hosts, 0.7, Policy::Feiyun, &mut rng);
        let asks: Vec<Ask> = (0..1024).map(|_| Ask::new(draw(&mut rng), Policy::Feiyun)).collect();
        let mut i = 0;
        g.bench_with_input(BenchmarkId::new("single", hosts), &hosts, |b, _| {
            b.iter(|| {
                let a = &asks[i % asks.len()];
                i += 1;
                if let Ok(h) = cluster.place(a, 1, 1) {
                    cluster.release(h[0], &a.demand, None);
                }
            })
        });
        g.bench_with_input(BenchmarkId::new("batch_of_50", hosts), &hosts, |b, _| {
            b.iter(|| {
                let a = &asks[i % asks.len()];
                i += 1;
                if let Ok(hs) = cluster.place(a, 50, 50) {
                    for h in hs {
                        cluster.release(h, &a.demand, None);
                    }
                }
            })
        });
    }
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
