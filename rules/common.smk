# Shared definitions: where results go, the benchmark list, wildcard constraints, checks that
# the schema cannot express.

RESULTS = f"results/{config['run_name']}"
# The software environment of every rule (used with --sdm conda).
ENV = "../environment.yml"
BENCHMARKS = list(config["benchmarks"])

missing_costs = [b for b in BENCHMARKS if b not in config["cost"]]
if missing_costs:
    raise ValueError(
        f"config key 'cost' has no entry for benchmark(s) {missing_costs}: "
        "give tokens_per_example, epochs and runs_per_size for each"
    )
bad_ratios = [r for r in config["ratios"] if config["target"] % r]
if bad_ratios:
    raise ValueError(
        f"config key 'ratios': {bad_ratios} do not divide the target size {config['target']}"
    )


wildcard_constraints:
    benchmark="|".join(BENCHMARKS),


def log_path(rule_name, name="{benchmark}"):
    """The log file of one job of `rule_name`."""
    return f"{RESULTS}/logs/{rule_name}/{name}.log"
