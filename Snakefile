# Scale-equivariance study on STIR ("Just a Matter of Scale?", Altstidl et al.).
#   snakemake --cores N                                    the paper's full study
#   snakemake --cores 2 --configfile config/quick.yaml     the offline quick study
#   snakemake --cores N results/tables/runs.csv            one artefact and what it needs
#   snakemake --cores N results/figures/fig4_accuracy.pdf  one figure and what it needs
#   snakemake --report report.zip                          figures and tables with captions
#   snakemake --cores 2 record --configfile config/reproduce_emoji.yaml
#                                                          docs/reproduction.md from the run
#   snakemake --cores 1 mlflow --config 'mlflow={enabled: true}'
#                                                          the runs into results/mlflow.db
# Configuration: config/README.md. Cluster profiles: profiles/README.md.
from snakemake.utils import min_version

min_version("9.17")


if not workflow.config_settings.configfiles:

    configfile: "config/config.yaml"


include: "rules/common.smk"
include: "rules/common_figures.smk"
include: "rules/data.smk"
include: "rules/bases.smk"
include: "rules/train.smk"
include: "rules/evaluate.smk"
include: "rules/aggregate.smk"
include: "rules/figures.smk"
include: "rules/reproduce.smk"
include: "rules/mlflow.smk"


report: "workflow/report/workflow.rst"


rule all:
    input:
        all_tables(),
        all_figures(),
        verdict_targets(),
        paper_rate_runs(),
