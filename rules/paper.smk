# Paper mode: every table and figure of Lin et al. (2024), "Selecting Large Language Model to
# Fine-tune via Rectified Scaling Law", in results/<run>/paper/, from the run's own loss tables,
# selections and fits (lensllm.report.paper). The ablations rerun our selectors on the loss tables.

from lensllm.pipeline.layout import PAPER_FIGURES, paper_dir, paper_figure_inputs
from lensllm.report.paper import TABLE1_METHODS, TABLE2_METHODS

PAPER = paper_dir(RESULTS)
# The config section `paper` (config/README.md): the ablation grids; absent keys keep the paper's.
PAPER_SETTINGS = config.get("paper", {})
PAPER_TABLE_METHODS = {"table1": list(TABLE1_METHODS), "table2": list(TABLE2_METHODS)}


wildcard_constraints:
    table="table1|table2",
    ablation="hyper|size",


rule make_paper_table:
    input:
        f"{RESULTS}/selection.tsv",
    output:
        tsv=f"{PAPER}/{{table}}.tsv",
        md=f"{PAPER}/{{table}}.md",
        tex=f"{PAPER}/{{table}}.tex",
    log:
        log_path("make_paper_table", "{table}"),
    group:
        "analysis"
    conda:
        ENV
    threads: 1
    resources:
        mem_mb=500,
        runtime=5,
    params:
        methods=lambda wildcards: PAPER_TABLE_METHODS[wildcards.table],
        target=config["target"],
    script:
        "../workflow/scripts/make_paper_table.py"


# Race against AtS, cell by cell (lensllm.report.race): RelAcc, regret, FLOPs / AtS's, rounds, and
# the calibration of P(best).
rule make_race_table:
    input:
        losses=expand(f"{RESULTS}/losses/{{benchmark}}.tsv", benchmark=BENCHMARKS),
        flops=expand(
            f"{RESULTS}/finetune_flops/{{benchmark}}.tsv", benchmark=BENCHMARKS
        ),
    output:
        tsv=f"{RESULTS}/race.tsv",
        md=f"{RESULTS}/race.md",
    log:
        log_path("make_race_table", "all"),
    benchmark:
        f"{RESULTS}/benchmarks/make_race_table/all.tsv"
    group:
        "analysis"
    conda:
        ENV
    threads: 1
    resources:
        mem_mb=1000,
        runtime=10,
    params:
        benchmarks=BENCHMARKS,
        target=config["target"],
        ratios=config["ratios"],
        settings=config["selection"],
    script:
        "../workflow/scripts/make_race_table.py"


rule make_paper_rmsd_table:
    input:
        fits=f"{RESULTS}/fits.tsv",
        losses=expand(f"{RESULTS}/losses/{{benchmark}}.tsv", benchmark=BENCHMARKS),
    output:
        tsv=f"{PAPER}/table3.tsv",
        md=f"{PAPER}/table3.md",
        tex=f"{PAPER}/table3.tex",
    log:
        log_path("make_paper_rmsd_table", "all"),
    group:
        "analysis"
    conda:
        ENV
    threads: 1
    resources:
        mem_mb=500,
        runtime=5,
    params:
        benchmarks=BENCHMARKS,
    script:
        "../workflow/scripts/make_paper_rmsd_table.py"


rule run_paper_ablation:
    input:
        expand(f"{RESULTS}/losses/{{benchmark}}.tsv", benchmark=BENCHMARKS),
    output:
        f"{PAPER}/ablation_{{ablation}}.tsv",
    log:
        log_path("run_paper_ablation", "{ablation}"),
    benchmark:
        f"{RESULTS}/benchmarks/run_paper_ablation/{{ablation}}.tsv"
    group:
        "analysis"
    conda:
        ENV
    threads: 1
    resources:
        mem_mb=1000,
        runtime=10,
    params:
        benchmarks=BENCHMARKS,
        target=config["target"],
        ratios=config["ratios"],
        settings=config["selection"],
        ablation=PAPER_SETTINGS,
    script:
        "../workflow/scripts/run_paper_ablation.py"


rule plot_paper_figure:
    input:
        unpack(
            lambda wildcards: paper_figure_inputs(
                RESULTS, BENCHMARKS, wildcards.figure
            )
        ),
    output:
        png=report(
            f"{PAPER}/{{figure}}.png",
            caption="../workflow/report/paper_figure.rst",
            category="Paper (Lin et al. 2024)",
            subcategory="{figure}",
        ),
        pdf=f"{PAPER}/{{figure}}.pdf",
    log:
        log_path("plot_paper_figure", "{figure}"),
    wildcard_constraints:
        figure="|".join(PAPER_FIGURES),
    group:
        "analysis"
    conda:
        ENV
    threads: 1
    resources:
        mem_mb=1000,
        runtime=5,
    params:
        benchmarks=BENCHMARKS,
        target=config["target"],
        ratio=max(config["ratios"]),
        methods=PAPER_TABLE_METHODS["table1"] + ["RectifiedFit", "VanillaFit"],
    script:
        "../workflow/scripts/plot_paper_figure.py"


rule plot_paper_curves:
    input:
        losses=f"{RESULTS}/losses/{{benchmark}}.tsv",
        fits=f"{RESULTS}/fits/{{benchmark}}.tsv",
    output:
        png=report(
            f"{PAPER}/curves_{{benchmark}}.png",
            caption="../workflow/report/paper_curves.rst",
            category="Paper (Lin et al. 2024)",
            subcategory="curves",
        ),
        pdf=f"{PAPER}/curves_{{benchmark}}.pdf",
    log:
        log_path("plot_paper_curves"),
    group:
        "analysis"
    conda:
        ENV
    threads: 1
    resources:
        mem_mb=1000,
        runtime=5,
    params:
        ats_k=config["selection"]["ats_k"],
        ats_delta=config["selection"]["ats_delta"],
    script:
        "../workflow/scripts/plot_paper_curves.py"
