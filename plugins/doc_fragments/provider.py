# -*- coding: utf-8 -*-
# Copyright: (c) 2026, pgcdc.clickpipes contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# Written by tools/document_providers.py from plugins/module_utils/providers.py: change the registry, then run it.

from __future__ import annotations


class ModuleDocFragment:
    """The provider option of the modules that check a source."""

    DOCUMENTATION = r'''
options:
  provider:
    description:
      - The provider the fixes and console steps are written for. V(auto) fingerprints the source by what only one
        provider has (a setting, a function, an extension, a host name pattern); any other value names it, and the
        C(provider) check warns when the fingerprint differs.
      - The result's C(clickpipes_connection.source_type) is the ClickPipes source type to pick for it.
      - V(neon) is Neon (ClickPipes source type C(neon)).
      - V(planetscale) is PlanetScale for Postgres (ClickPipes source type C(planetscale)).
      - V(aurora) is Amazon Aurora PostgreSQL (ClickPipes source type C(aurorapostgres)).
      - V(rds) is Amazon RDS for PostgreSQL (ClickPipes source type C(rdspostgres)).
      - V(alloydb) is Google AlloyDB for PostgreSQL (ClickPipes source type C(alloydb)).
      - V(cloudsql) is Google Cloud SQL for PostgreSQL (ClickPipes source type C(cloudsqlpostgres)).
      - V(azure) is Azure Database for PostgreSQL flexible server (ClickPipes source type C(azurepostgres)).
      - V(supabase) is Supabase (ClickPipes source type C(supabase)).
      - V(crunchybridge) is Crunchy Bridge (ClickPipes source type C(crunchybridge)).
      - V(timescale) is TimescaleDB (Tiger Data) (ClickPipes source type C(tigerdata)).
      - V(generic) is self-hosted PostgreSQL (ClickPipes source type C(postgres)).
    type: str
    choices: [auto, neon, planetscale, aurora, rds, alloydb, cloudsql, azure, supabase, crunchybridge, timescale, generic]
    default: auto
'''
