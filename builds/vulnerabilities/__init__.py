"""Air-gapped vulnerability matching: OSV data that staff import (a background run, VulnerabilityImport) matched
offline against every analysed image's packages, in each ecosystem's own version order.

Its own Django app inside builds (label `vulnerabilities`), above the rest of builds: it reads images and their
packages, builds never imports it (it hears of newly recorded packages through `builds.signals.packages_recorded`,
connected in `VulnerabilitiesConfig.ready`). Modules: `versions.py` (the orders), `ranges.py` (OSV's range
evaluation), `ecosystems.py` (a package's OSV ecosystem and name), `osv.py` (reading records and archives, with
limits), `services.py` (imports, matching, what pages and the API read), `runner.py` (the import job), `tasks.py`.
"""
