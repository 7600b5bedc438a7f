# -*- coding: utf-8 -*-
# Copyright: (c) 2026, pgcdc.clickpipes contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The provider registry: everything the collection knows about each kind of ClickPipes Postgres source, in one place.

One Provider per id, in fingerprint order. Option choices, the fingerprint (provider: auto), the console steps of the
checks, the endpoints refused, the standing notices, the role a playbook runs and the generated docs all derive from
REGISTRY (tools/document_providers.py writes the lists the docs need; a test fails when a list appears elsewhere).
"""

from __future__ import annotations

import re

STATIC_IPS = 'https://clickhouse.com/docs/integrations/clickpipes#list-of-static-ips'


def step(what, where, restart=False, caution=None):
    return dict(what=what, where=where, restart=restart, caution=caution)


def notice(notice_id, what, where):
    return dict(id=notice_id, what=what, where=where, restart=False, caution=None)


def static_ips_notice(provider_id, where):
    return notice('%s_static_ips' % provider_id, 'Allow the ClickPipes static IPs of your ClickHouse service\'s region '
                  '(%s) to reach the database.' % STATIC_IPS, where)


class Endpoint:
    """An endpoint CDC cannot use: a host name pattern (any provider's: host names are specific) or a port (only on
    the provider that puts a pooler there)."""

    def __init__(self, what, host=None, port=None):
        self.what = what
        self.host = re.compile(host) if host else None
        self.port = port

    def matches(self, host, port, own):
        if self.host is not None:
            return bool(self.host.search(host or ''))
        return own and port == self.port


class Provider:
    """What one provider is and needs. ``fingerprint`` is what identifies it: setting names any of which is defined,
    a pg_catalog function, an extension installed in the database, or a host name pattern (in that order of trust).
    ``replication_role``: membership in this role gives what REPLICATION gives elsewhere (it is granted instead).
    ``replication_admin_roles``: the provider's admin roles whose members it lets give REPLICATION to a role they create
    (on every major: stock PostgreSQL 15 and older lets only a superuser).
    ``parameters``: where its server parameters are changed (None: by SQL, self-hosted). ``automation``: what its role
    can do through the provider's API, opt-in (for the docs). ``snapshot_only``: endpoints of a service of the provider
    that cannot do logical replication at all, where ClickPipes can only copy the tables once."""

    def __init__(self, provider_id, name, source_type, role, settings=(), function=None, extension=None, host=None,
                 parameters=None, setting_steps=None, decoding_settings=(), user_step=None, pooler_step=None,
                 primary_step=None, endpoints=(), notices=(), replication_role=None, schema_publishing_roles=(),
                 min_major=12, automation=None, replication_admin_roles=(), snapshot_only=()):
        self.id = provider_id
        self.name = name
        self.source_type = source_type
        self.role = role
        self.settings = settings
        self.function = function
        self.extension = extension
        self.host = re.compile(host) if host else None
        self.parameters = parameters
        self.setting_steps = setting_steps or {}
        self.decoding_settings = decoding_settings
        self.user_step = user_step
        self.pooler_step = pooler_step
        self.primary_step = primary_step
        self.endpoints = endpoints
        self.notices = notices
        self.replication_role = replication_role
        self.schema_publishing_roles = schema_publishing_roles
        self.min_major = min_major
        self.automation = automation
        self.replication_admin_roles = replication_admin_roles
        self.snapshot_only = snapshot_only

    def identifiable(self):
        """Whether the server itself shows this provider (else only its host names do, which an IP address hides)."""
        return bool(self.settings or self.function or self.extension)


GENERIC_POOLER_STEP = step('Connect to PostgreSQL directly, not through PgBouncer or another pooler/proxy: CDC needs a '
                           'replication connection, which poolers do not pass through.', 'the connection settings of the ClickPipe')
GENERIC_PRIMARY_STEP = step('Connect to the primary (writer) server: publications and users are made there.', 'the inventory (login_host)')
SNAPSHOT_ONLY_STEP = step('Create the ClickPipe with the replication mode "Initial load only" (API: replicationMode '
                          'snapshot): ClickPipes can copy the tables once, but cannot replicate changes (CDC) from this '
                          'service.', 'ClickPipes: the Postgres ClickPipe\'s replication mode')
UPGRADE_STEP = step('Upgrade PostgreSQL to a supported minor release.', 'your provider\'s upgrade page or your package manager', restart=True)

PLANETSCALE_PARAMETERS = 'PlanetScale console: your database > Cluster configuration > Parameters > Write-ahead log'
NEON_LOGICAL_REPLICATION = ('Neon console: your project > Settings > Logical Replication > Enable (or the API: PATCH '
                            '/api/v2/projects/{project_id} with {"project": {"settings": {"enable_logical_replication": true}}})')
RDS_PARAMETERS = ('AWS console: RDS > Parameter groups > the custom DB parameter group of the instance (attach one under '
                  'Databases > <instance> > Modify > DB parameter group if it still has the default group)')
AURORA_PARAMETERS = ('AWS console: RDS > Parameter groups > the custom DB cluster parameter group of the cluster (attach one '
                     'under Databases > <cluster> > Modify > DB cluster parameter group if it still has the default group)')
CLOUDSQL_FLAGS = 'Google Cloud console: SQL > <instance> > Edit > Flags'
ALLOYDB_FLAGS = ('Google Cloud console: AlloyDB > Clusters > <cluster> > primary instance > Actions > Edit > Advanced '
                 'configuration options > Flags')
AZURE_PARAMETERS = 'Azure portal: your flexible server > Settings > Server parameters'
CRUNCHY_PARAMETERS = 'Crunchy Bridge dashboard: your cluster > Configuration'
TIMESCALE_CLOUD = r'\.tsdb\.cloud\.timescale\.com\.?$'
AWS_NETWORK = 'AWS console: RDS > Databases > <instance> > Connectivity & security > VPC security groups > Inbound rules'
AWS_IAM = ('For IAM authentication instead of a password: set rds.iam_auth_for_replication to 1 in the parameter group, '
           'enable IAM database authentication on the database and GRANT rds_iam TO the replication user; ClickPipes '
           'then assumes an IAM role you create for it.')
RDS_PROXY = Endpoint('an RDS Proxy endpoint, which does not pass replication connections',
                     host=r'\.proxy-[a-z0-9]+\.[a-z0-9-]+\.rds\.amazonaws\.com\.?$')
RDS_DIRECT_STEP = step('Connect to the database\'s own endpoint (Aurora: the cluster writer endpoint), not an RDS Proxy or '
                       'reader endpoint.', 'AWS console: RDS > Databases > <database> > Connectivity & security > Endpoints')

REGISTRY = dict((provider.id, provider) for provider in (
    Provider(
        'neon', 'Neon', 'neon', 'neon', settings=('neon.endpoint_id',),
        parameters='Neon support: Neon sets most server settings itself (Neon docs: Postgres parameter settings)',
        setting_steps={
            'wal_level': step('Enable logical replication for the project.', NEON_LOGICAL_REPLICATION, restart=True,
                              caution='It cannot be undone and restarts every compute of the project.'),
            'max_wal_senders': step('Enable logical replication: Neon then sets max_wal_senders to 10.', NEON_LOGICAL_REPLICATION, restart=True),
            'max_replication_slots': step('Enable logical replication: Neon then sets max_replication_slots to 10; drop unused '
                                          'slots if all are taken.', NEON_LOGICAL_REPLICATION, restart=True),
            'max_slot_wal_keep_size': step('Neon manages WAL retention; keep the ClickPipe running so its slot stays active.',
                                           'no setting to change'),
        },
        user_step=step('Create the role in the Neon console or API: such roles are members of neon_superuser, which has '
                       'REPLICATION. Roles created by SQL may not be able to get it.',
                       'Neon console: your project > Branches > <branch> > Roles & Databases > Add role (or POST '
                       '/api/v2/projects/{project_id}/branches/{branch_id}/roles)'),
        pooler_step=step('Use the direct endpoint: the host name without -pooler.', 'Neon console: Dashboard > Connect (pooled connection off)'),
        endpoints=(Endpoint('a Neon -pooler endpoint', host=r'-pooler(\.|$)'),),
        notices=(
            notice('neon_ip_allow', 'If IP Allow is on (Enterprise plans), allow the ClickPipes static IPs of your '
                   'ClickHouse service\'s region (%s).' % STATIC_IPS, 'Neon console: your project > Settings > IP Allow'),
            notice('neon_slot_removal', 'Neon removes inactive replication slots after a while (about 40 hours) and a branch '
                   'restore deletes slots: keep the ClickPipe running and resync it after a restore.', 'operations'),
            notice('neon_connection_details', 'Copy the connection details for the ClickPipe from the direct (not pooled) '
                   'connection string, Parameters only.', 'Neon console: Dashboard > Connect'),
        ),
        schema_publishing_roles=('neon_superuser',),
        automation='logical replication on, by the Neon API (`clickpipes_neon_enable_logical_replication`)'),
    Provider(
        'planetscale', 'PlanetScale for Postgres', 'planetscale', 'planetscale', settings=('extwlist.pscale_allowed_extensions',),
        parameters=PLANETSCALE_PARAMETERS,
        setting_steps={
            'wal_level': step('Set wal_level to logical.', PLANETSCALE_PARAMETERS, restart=True,
                              caution='Changing wal_level restarts the cluster.'),
            'max_wal_senders': step('Raise max_wal_senders (at least 10 recommended).', PLANETSCALE_PARAMETERS, restart=True),
            'max_replication_slots': step('Raise max_replication_slots (each ClickPipe needs one slot).', PLANETSCALE_PARAMETERS, restart=True),
            'max_slot_wal_keep_size': step('Raise max_slot_wal_keep_size above its 4GB default.', PLANETSCALE_PARAMETERS,
                                           caution='PlanetScale also uses this value to decide when to put a lagging cluster in '
                                                   'read-only mode: size it for at least two days of WAL.'),
            'wal_sender_timeout': step('Raise wal_sender_timeout to at least 5min (or 0).', PLANETSCALE_PARAMETERS),
        },
        user_step=step('Create the replication role with REPLICATION: pscale role create <database> <branch> <name> '
                       '--with-replication, or in the console.', 'PlanetScale console: your database > Roles'),
        pooler_step=step('Connect on port 5432 (direct), not the PSBouncer port 6432: CDC needs a direct connection.',
                         'PlanetScale console: your database > Connect'),
        primary_step=step('Connect to the primary: PlanetScale replicas are not supported as a CDC source.',
                          'PlanetScale console: your database > Connect'),
        endpoints=(Endpoint('port 6432 is PlanetScale\'s PSBouncer', port=6432),),
        notices=(
            notice('planetscale_user_name', 'ClickPipes logs in as {login}: the role name followed by the branch id that the '
                   'admin login name also carries.', 'the ClickPipe\'s user field'),
            notice('planetscale_failover_slots', 'On PostgreSQL 17 and later, turn on "enable failover" in the ClickPipe so its '
                   'slot survives a primary failover.', 'the ClickPipe\'s advanced settings'),
        )),
    # Aurora defines rds.* settings too: its function decides first.
    Provider(
        'aurora', 'Amazon Aurora PostgreSQL', 'aurorapostgres', 'rds', function='aurora_version',
        parameters=AURORA_PARAMETERS, decoding_settings=('rds.logical_replication',),
        setting_steps={
            'wal_level': step('Set rds.logical_replication to 1 in the cluster\'s custom DB cluster parameter group, then '
                              'reboot the cluster\'s writer instance.', AURORA_PARAMETERS, restart=True,
                              caution='The change stays pending until the reboot.'),
        },
        pooler_step=RDS_DIRECT_STEP,
        primary_step=step('Connect to the cluster (writer) endpoint; for a Global Database, the primary region\'s writer.',
                          'AWS console: RDS > Databases > <cluster> > Connectivity & security > Endpoints'),
        endpoints=(Endpoint('an Aurora reader endpoint, which reaches a replica', host=r'\.cluster-ro-[a-z0-9]+\.'), RDS_PROXY),
        notices=(static_ips_notice('aurora', AWS_NETWORK), notice('aurora_iam_auth', AWS_IAM, 'AWS console: RDS and IAM')),
        replication_role='rds_replication',
        automation=('rds.logical_replication and max_slot_wal_keep_size in the DB cluster parameter group, a reboot only when '
                    'allowed (amazon.aws: `clickpipes_rds_parameter_group`)')),
    Provider(
        'rds', 'Amazon RDS for PostgreSQL', 'rdspostgres', 'rds', settings=('rds.extensions',),
        parameters=RDS_PARAMETERS, decoding_settings=('rds.logical_replication',),
        setting_steps={
            'wal_level': step('Set rds.logical_replication to 1 in the instance\'s custom DB parameter group, then reboot '
                              'the instance.', RDS_PARAMETERS, restart=True, caution='The change stays pending until the reboot.'),
        },
        pooler_step=RDS_DIRECT_STEP,
        endpoints=(RDS_PROXY,),
        notices=(static_ips_notice('rds', AWS_NETWORK), notice('rds_iam_auth', AWS_IAM, 'AWS console: RDS and IAM')),
        replication_role='rds_replication',
        automation=('rds.logical_replication and max_slot_wal_keep_size in the DB parameter group, a reboot only when '
                    'allowed (amazon.aws: `clickpipes_rds_parameter_group`)')),
    Provider(
        'alloydb', 'Google AlloyDB for PostgreSQL', 'alloydb', 'cloudsql',
        settings=('alloydb.logical_decoding', 'alloydb.enable_pglogical', 'alloydb.iam_authentication'),
        parameters=ALLOYDB_FLAGS, decoding_settings=('alloydb.logical_decoding', 'alloydb.enable_pglogical'),
        setting_steps={
            'wal_level': step('Add the flags alloydb.enable_pglogical = on and alloydb.logical_decoding = on to the primary '
                              'instance, then Update instance.', ALLOYDB_FLAGS, restart=True,
                              caution='Updating the instance restarts the primary.'),
        },
        notices=(
            notice('alloydb_network', 'Enable Public IP on the primary instance and add the ClickPipes static IPs of your '
                   'ClickHouse service\'s region (%s) as /32 authorized external networks, with Require SSL encryption on. '
                   'ClickPipes does not support Private Service Connect for AlloyDB: use an SSH tunnel for a private '
                   'connection.' % STATIC_IPS,
                   'Google Cloud console: AlloyDB > Clusters > <cluster> > Instances in your cluster > Edit primary'),
        ),
        min_major=14, replication_admin_roles=('alloydbsuperuser',)),
    Provider(
        'cloudsql', 'Google Cloud SQL for PostgreSQL', 'cloudsqlpostgres', 'cloudsql', settings=('cloudsql.logical_decoding',),
        parameters=CLOUDSQL_FLAGS, decoding_settings=('cloudsql.logical_decoding',),
        setting_steps={
            'wal_level': step('Set the flag cloudsql.logical_decoding to on.', CLOUDSQL_FLAGS, restart=True,
                              caution='Saving the flag restarts the instance.'),
        },
        notices=(
            static_ips_notice('cloudsql', 'Google Cloud console: SQL > <instance> > Connections > Networking > Authorized networks'),
            notice('cloudsql_private_service_connect', 'For a private connection over Private Service Connect (the instance '
                   'must have no public IP): gcloud sql instances patch <instance> --enable-private-service-connect '
                   '--allowed-psc-projects=clickpipes-production; read the service attachment and DNS name with gcloud sql '
                   'instances describe <instance> --format=\'value(pscServiceAttachmentLink,dnsName)\'; create a reverse '
                   'private endpoint in ClickPipes with them, then give the ClickPipe that DNS name (without its trailing '
                   'dot) as host, port 5432, and the endpoint.', 'gcloud, then ClickPipes: reverse private endpoints'),
        ),
        replication_admin_roles=('cloudsqlsuperuser',)),
    Provider(
        'azure', 'Azure Database for PostgreSQL flexible server', 'azurepostgres', 'azure', settings=('azure.extensions',),
        parameters=AZURE_PARAMETERS,
        setting_steps={
            'wal_level': step('Set wal_level to logical, save, and restart the server when the portal asks.', AZURE_PARAMETERS,
                              restart=True),
        },
        pooler_step=step('Connect on port 5432, not the built-in PgBouncer on 6432: CDC needs a direct connection.',
                         'Azure portal: your flexible server > Overview (Server name, port 5432)'),
        endpoints=(Endpoint('port 6432 is Azure\'s built-in PgBouncer', port=6432),),
        notices=(static_ips_notice('azure', 'Azure portal: your flexible server > Settings > Networking > Firewall rules'),),
        replication_admin_roles=('azure_pg_admin',)),
    Provider(
        'supabase', 'Supabase', 'supabase', 'supabase', settings=('supautils.privileged_extensions',),
        parameters='Supabase dashboard: Project Settings > Database',
        setting_steps={
            'max_slot_wal_keep_size': step('Raise max_slot_wal_keep_size with the Supabase CLI: supabase --experimental '
                                           'postgres-config update --project-ref <project_ref> --config '
                                           'max_slot_wal_keep_size=<size>.', 'the Supabase CLI', restart=True,
                                           caution='The CLI restarts the database to apply it.'),
        },
        pooler_step=step('Use the direct connection: host db.<project_ref>.supabase.co, port 5432 (turn off "Display '
                         'connection pooler" to see it), not the Supavisor pooler.',
                         'Supabase dashboard: Project Settings > Database > Connection parameters'),
        endpoints=(Endpoint('a Supavisor pooler host', host=r'(^|\.)pooler\.supabase\.com\.?$'),
                   Endpoint('port 6543 is Supabase\'s Supavisor pooler', port=6543)),
        notices=(
            notice('supabase_ipv6', 'The direct host db.<project_ref>.supabase.co has an IPv6 address only (unless the IPv4 '
                   'add-on is on): ClickPipes connects over IPv6, but the host running this playbook needs IPv6 too.',
                   'Supabase dashboard: Project Settings > Add-ons (IPv4 address)'),
        )),
    Provider(
        'crunchybridge', 'Crunchy Bridge', 'crunchybridge', 'crunchybridge', host=r'\.postgresbridge\.com\.?$',
        parameters=CRUNCHY_PARAMETERS,
        setting_steps={
            'wal_level': step('Crunchy Bridge clusters have logical replication on by default (wal_level = logical): set '
                              'wal_level back to logical.', CRUNCHY_PARAMETERS, restart=True,
                              caution='Changing wal_level restarts the cluster.'),
        },
        notices=(static_ips_notice('crunchybridge', 'Crunchy Bridge dashboard: your cluster > Networking > Firewall rules'),)),
    Provider(
        'timescale', 'TimescaleDB (Tiger Data)', 'tigerdata', 'timescale', extension='timescaledb',
        host=TIMESCALE_CLOUD, parameters='Tiger Data console: your service > Operations > Database parameters',
        notices=(
            notice('timescale_hypertables', 'ClickPipes replicates hypertables on a best-effort basis: their rows live in '
                   'chunks in _timescaledb_internal, which the publication covers as a whole (check hypertable_chunks). '
                   'Timescale Cloud (*.tsdb.cloud.timescale.com) cannot do logical replication: there, create the '
                   'ClickPipe with "Initial load only".', 'the ClickPipe'),
        ),
        snapshot_only=(Endpoint('Timescale Cloud cannot do logical replication', host=TIMESCALE_CLOUD),)),
    Provider('generic', 'self-hosted PostgreSQL', 'postgres', 'source'),
))

IDS = tuple(REGISTRY)
CHOICES = ('auto',) + IDS
GENERIC = REGISTRY['generic']
# Roles whose members may publish whole schemas or databases without being superusers.
SCHEMA_PUBLISHING_ROLES = tuple(name for provider in REGISTRY.values() for name in provider.schema_publishing_roles)
# Roles whose members a provider lets give REPLICATION without being superusers.
REPLICATION_ADMIN_ROLES = tuple(name for provider in REGISTRY.values() for name in provider.replication_admin_roles)
FINGERPRINT_SETTINGS = tuple(name for provider in REGISTRY.values() for name in provider.settings + provider.decoding_settings)
FINGERPRINT_FUNCTIONS = tuple(provider.function for provider in REGISTRY.values() if provider.function)
FINGERPRINT_EXTENSIONS = tuple(provider.extension for provider in REGISTRY.values() if provider.extension)


def get(provider_id):
    return REGISTRY.get(provider_id, GENERIC)


def fingerprint(settings, functions, extensions, host):
    """The provider a source looks like: the first whose marker the source shows, by the most trustworthy kind first."""
    providers = list(REGISTRY.values())
    for provider in providers:
        if any((settings.get(name) or {}).get('setting') for name in provider.settings) or provider.function in functions:
            return provider.id
    for provider in providers:
        if provider.host is not None and provider.host.search(host or ''):
            return provider.id
    for provider in providers:
        if provider.extension in extensions:
            return provider.id
    return GENERIC.id


def refused_endpoint(provider_id, host, port):
    """Why CDC cannot use this endpoint (None when it can): a host pattern of any provider, a port of this one."""
    for provider in REGISTRY.values():
        for endpoint in provider.endpoints:
            if endpoint.matches(host, port, provider.id == provider_id):
                return endpoint.what
    return None


def snapshot_only(host):
    """Why no logical replication can be had at this host (None when it may be): a host pattern of any provider."""
    for provider in REGISTRY.values():
        for endpoint in provider.snapshot_only:
            if endpoint.matches(host, None, True):
                return endpoint.what
    return None


def setting_step(provider_id, check_id, target, restart):
    """The console step that changes a server setting on a managed provider; None on a self-hosted server (SQL)."""
    provider = get(provider_id)
    if provider.parameters is None:
        return None
    return provider.setting_steps.get(check_id) or step('Set %s to %s.' % (check_id, target), provider.parameters, restart=restart)


def pooler_step(provider_id):
    return get(provider_id).pooler_step or GENERIC_POOLER_STEP


def primary_step(provider_id):
    return get(provider_id).primary_step or GENERIC_PRIMARY_STEP


def user_step(provider_id):
    return get(provider_id).user_step


def branch_suffix(admin_login):
    """PlanetScale's admin login is <role>.<branch_id>; the branch id routes the connection."""
    if admin_login and '.' in admin_login:
        return admin_login.rsplit('.', 1)[1]
    return None


def notices(provider_id, login):
    """The provider's standing notices, naming the login ClickPipes must use."""
    if '.' not in login and provider_id == 'planetscale':
        login = '%s.<branch_id> (the admin login name carries no branch id: take it from the console)' % login
    return [dict(item, what=item['what'].format(login=login)) for item in get(provider_id).notices]


def clickpipes_login(user, provider_id, admin_login):
    """The user name to type into ClickPipes."""
    suffix = branch_suffix(admin_login) if provider_id == 'planetscale' else None
    return '%s.%s' % (user, suffix) if suffix else user


def source_type(provider_id):
    """The source type to pick in ClickPipes (its API's source.postgres.type)."""
    return get(provider_id).source_type


def display_name(provider_id):
    return get(provider_id).name if provider_id in REGISTRY else provider_id
