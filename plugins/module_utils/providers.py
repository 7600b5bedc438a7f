# -*- coding: utf-8 -*-
# Copyright: (c) 2026, pgcdc.clickpipes contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Provider knowledge, in one place: fingerprints, console steps, restart warnings and standing notices.

The source_check module puts these steps into its findings; the provider roles only print what it returns.
"""

from __future__ import annotations

# Settings only a given provider defines (checked in this order), as PeerDB fingerprints a source.
FINGERPRINT_SETTINGS = (
    ('neon.endpoint_id', 'neon'),
    ('extwlist.pscale_allowed_extensions', 'planetscale'),
    ('rds.extensions', 'rds'),
    ('cloudsql.logical_decoding', 'cloudsql'),
    ('azure.extensions', 'azure'),
    ('supautils.privileged_extensions', 'supabase'),
)

NAMES = dict(generic='self-hosted PostgreSQL', planetscale='PlanetScale for Postgres', neon='Neon', rds='Amazon RDS',
             aurora='Amazon Aurora', cloudsql='Google Cloud SQL', azure='Azure Database for PostgreSQL', supabase='Supabase')

PLANETSCALE_PARAMETERS = 'PlanetScale console: your database > Cluster configuration > Parameters > Write-ahead log'
NEON_LOGICAL_REPLICATION = ('Neon console: your project > Settings > Logical Replication > Enable (or the API: PATCH '
                            '/api/v2/projects/{project_id} with {"project": {"settings": {"enable_logical_replication": true}}})')
# Roles whose members may publish whole schemas or databases without being superusers.
SCHEMA_PUBLISHING_ROLES = ('neon_superuser',)
PLANETSCALE_DIRECT_PORT = 5432
PLANETSCALE_POOLER_PORT = 6432


def step(what, where, restart=False, caution=None):
    return dict(what=what, where=where, restart=restart, caution=caution)


# Console steps for a setting a provider manages, by provider and check id. Self-hosted sources use SQL instead.
SETTING_STEPS = {
    'planetscale': {
        'wal_level': step('Set wal_level to logical.', PLANETSCALE_PARAMETERS, restart=True,
                          caution='Changing wal_level restarts the cluster.'),
        'max_wal_senders': step('Raise max_wal_senders (at least 10 recommended).', PLANETSCALE_PARAMETERS, restart=True),
        'max_replication_slots': step('Raise max_replication_slots (each ClickPipe needs one slot).', PLANETSCALE_PARAMETERS, restart=True),
        'max_slot_wal_keep_size': step('Raise max_slot_wal_keep_size above its 4GB default.', PLANETSCALE_PARAMETERS,
                                       caution='PlanetScale also uses this value to decide when to put a lagging cluster in '
                                               'read-only mode: size it for at least two days of WAL.'),
        'wal_sender_timeout': step('Raise wal_sender_timeout to at least 5min (or 0).', PLANETSCALE_PARAMETERS),
    },
    'neon': {
        'wal_level': step('Enable logical replication for the project.', NEON_LOGICAL_REPLICATION, restart=True,
                          caution='It cannot be undone and restarts every compute of the project.'),
        'max_wal_senders': step('Enable logical replication: Neon then sets max_wal_senders to 10.', NEON_LOGICAL_REPLICATION, restart=True),
        'max_replication_slots': step('Enable logical replication: Neon then sets max_replication_slots to 10; drop unused '
                                      'slots if all are taken.', NEON_LOGICAL_REPLICATION, restart=True),
        'max_slot_wal_keep_size': step('Neon manages WAL retention; keep the ClickPipe running so its slot stays active.',
                                       'no setting to change'),
    },
}

USER_STEPS = {
    'planetscale': step('Create the replication role with REPLICATION: pscale role create <database> <branch> <name> '
                        '--with-replication, or in the console.', 'PlanetScale console: your database > Roles'),
    'neon': step('Create the role in the Neon console or API: such roles are members of neon_superuser, which has '
                 'REPLICATION. Roles created by SQL may not be able to get it.',
                 'Neon console: your project > Branches > <branch> > Roles & Databases > Add role (or POST '
                 '/api/v2/projects/{project_id}/branches/{branch_id}/roles)'),
}

POOLER_STEPS = {
    'planetscale': step('Connect on port 5432 (direct), not the PSBouncer port 6432: CDC needs a direct connection.',
                        'PlanetScale console: your database > Connect'),
    'neon': step('Use the direct endpoint: the host name without -pooler.', 'Neon console: Dashboard > Connect (pooled connection off)'),
    'generic': step('Connect to PostgreSQL directly, not through PgBouncer or another pooler/proxy: CDC needs a '
                    'replication connection, which poolers do not pass through.', 'the connection settings of the ClickPipe'),
}

PRIMARY_STEPS = {
    'planetscale': step('Connect to the primary: PlanetScale replicas are not supported as a CDC source.', 'PlanetScale console: your database > Connect'),
    'generic': step('Connect to the primary (writer) server: publications and users are made there.', 'the inventory (login_host)'),
}

UPGRADE_STEP = step('Upgrade PostgreSQL to a supported minor release.', 'your provider\'s upgrade page or your package manager', restart=True)

# Standing notices: what no query can check, shown for every source of the provider.
NOTICES = {
    'neon': [
        dict(id='neon_ip_allow', what='If IP Allow is on (Enterprise plans), allow the ClickPipes static IPs of your '
             'ClickHouse service\'s region.', where='Neon console: your project > Settings > IP Allow', restart=False, caution=None),
        dict(id='neon_slot_removal', what='Neon removes inactive replication slots after a while (about 40 hours) and a '
             'branch restore deletes slots: keep the ClickPipe running and resync it after a restore.', where='operations',
             restart=False, caution=None),
        dict(id='neon_connection_details', what='Copy the connection details for the ClickPipe from the direct (not pooled) '
             'connection string, Parameters only.', where='Neon console: Dashboard > Connect', restart=False, caution=None),
    ],
    'planetscale': [
        dict(id='planetscale_user_name', what='ClickPipes logs in as {login}: the role name followed by the branch id '
             'that the admin login name also carries.', where='the ClickPipe\'s user field', restart=False, caution=None),
        dict(id='planetscale_failover_slots', what='On PostgreSQL 17 and later, turn on "enable failover" in the ClickPipe so '
             'its slot survives a primary failover.', where='the ClickPipe\'s advanced settings', restart=False, caution=None),
    ],
}


def setting_step(provider, check_id):
    return SETTING_STEPS.get(provider, {}).get(check_id)


def pick(steps, provider):
    return steps.get(provider) or steps.get('generic')


def branch_suffix(admin_login):
    """PlanetScale's admin login is <role>.<branch_id>; the branch id routes the connection."""
    if admin_login and '.' in admin_login:
        return admin_login.rsplit('.', 1)[1]
    return None


def notices(provider, login):
    """The provider's standing notices, naming the login ClickPipes must use."""
    if '.' not in login and provider == 'planetscale':
        login = '%s.<branch_id> (the admin login name carries no branch id: take it from the console)' % login
    return [dict(notice, what=notice['what'].format(login=login)) for notice in NOTICES.get(provider, [])]


def clickpipes_login(user, provider, admin_login):
    """The user name to type into ClickPipes."""
    suffix = branch_suffix(admin_login) if provider == 'planetscale' else None
    return '%s.%s' % (user, suffix) if suffix else user


def is_neon_pooler_host(host):
    return '-pooler.' in (host or '') or (host or '').endswith('-pooler')
