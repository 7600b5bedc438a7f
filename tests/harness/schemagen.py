"""A seeded generator of ClickPipes sources for the invariant tests (stdlib only).

``generate(seed, major)`` returns a :class:`Source`: the SQL that builds it (run by a superuser in a fresh database),
the role variables of the run, and what the generator expects, computed from the description and never from a
catalog: the tables the replication user must read (``scope``), the tables the publication must cover
(``published``, as leaf tables), the reasons a sound run must refuse (``refusals``; ``blocking``, those reading the
catalog finds, before any write) and the reasons the generator cannot tell (``uncertain``).

Every name the source creates in the cluster (roles) carries the seed, so many sources can share one cluster and
one playbook run. Tables are ``(schema, name)`` tuples throughout.
"""

from __future__ import annotations

import dataclasses
import random
import typing as t

# Schema and table names: spaces, quotes, unicode, mixed case; a dotted name is drawn rarely (ClickPipes refuses it).
SCHEMA_NAMES = ['sales', 'Sales Dept', 'weird"schema', 'ünïcode', 'MixedCase', 'app data']
DOTTED_SCHEMA = 'odd.schema'
TABLE_STEMS = ['orders', 'Order Items', 'ünïcode_täble', 'a"b', 'events', 'MixedCase', 'with space', 'customers',
               "robert'); DROP TABLE orders;--"]
TABLE_KINDS = ['plain'] * 14 + ['partitioned'] * 6 + ['unlogged', 'view', 'matview', 'foreign']
RELATION_KINDS = ('plain', 'partitioned', 'partition', 'unlogged')  # what PostgreSQL calls tables (relkind r and p)
IDENTITIES = ['default'] * 8 + ['full', 'index', 'nothing']
USER_STATES = ['absent'] * 6 + ['ready'] * 3 + ['nologin', 'noreplication', 'expired', 'other_password']
PUBLICATION_STATES = ['absent'] * 3 + ['some_tables', 'all_tables', 'in_schema', 'insert_only', 'via_root']
FAR_PAST = '2001-01-01'


def quote_ident(name: str) -> str:
    return '"%s"' % name.replace('"', '""')


def quote_literal(text: str) -> str:
    return "'%s'" % text.replace("'", "''")


def qualified(table: tuple[str, str]) -> str:
    return '%s.%s' % (quote_ident(table[0]), quote_ident(table[1]))


@dataclasses.dataclass
class Table:
    schema: str
    name: str
    kind: str  # plain, partitioned, partition, unlogged, view, matview, foreign
    owner: str
    primary_key: bool = True
    identity: str = 'default'  # default, full, index, nothing
    row_security: str = ''  # '', 'no_policy', 'policy'
    parent: tuple[str, str] | None = None
    key: int = 0  # a value of the partition key column k that lands in this table (or below it)
    children: list = dataclasses.field(default_factory=list)

    @property
    def ref(self) -> tuple[str, str]:
        return self.schema, self.name

    @property
    def is_table(self) -> bool:
        return self.kind in RELATION_KINDS

    @property
    def is_leaf(self) -> bool:
        return self.kind in ('plain', 'unlogged') or (self.kind == 'partition' and not self.children)

    @property
    def has_identity(self) -> bool:
        """Whether UPDATE/DELETE still work once the table is in a publication that publishes them."""
        return self.identity in ('full', 'index') or (self.identity == 'default' and self.primary_key)


@dataclasses.dataclass
class Source:
    seed: int
    major: int
    sql: str
    variables: dict[str, t.Any]
    admin: dict[str, t.Any]  # user, password, superuser (the superuser's password is the cluster's: None here)
    user: str
    password: str
    roles: list[str]  # every role this source creates, to drop afterwards
    owners: list[str]  # the roles that own tables (the admin included when it owns some)
    tables: list[Table]
    user_state: str
    publication_state: str
    scope: set[tuple[str, str]]  # the tables the user must read (roots and partitions)
    published: set[tuple[str, str]]  # the leaf tables the publication must cover
    readable_before: set[tuple[str, str]]  # tables the user could read before the run (never revoked)
    late_schemas: list[str]  # schemas where a table created after prepare must become readable
    alien: str  # an owner role the managed-like admin is not a member of
    refusals: list[str]  # why a sound run must not end ready
    blocking: list[str]  # the refusals reading the catalog finds: the run must refuse before its first write
    uncertain: list[str]  # why the generator cannot tell whether the run ends ready (both empty: it must)
    publication_target: str = ''  # how the pre-existing publication was created (FOR ...)

    def refuse(self, reason: str, before_writing: bool = True):
        self.refusals.append(reason)
        if before_writing:
            self.blocking.append(reason)

    def table(self, ref: tuple[str, str]) -> Table:
        return next(table for table in self.tables if table.ref == ref)

    def descendants(self, ref: tuple[str, str]) -> list[Table]:
        found = []
        for child in self.table(ref).children:
            found += [self.table(child)] + self.descendants(child)
        return found

    def leaves(self, refs) -> set[tuple[str, str]]:
        result = set()
        for ref in refs:
            table = self.table(ref)
            result |= {ref} if table.is_leaf else {d.ref for d in self.descendants(ref) if d.is_leaf}
        return result

    def describe(self) -> str:
        """What a person needs to replay the seed by hand."""
        public = dict((key, value) for key, value in self.variables.items() if 'password' not in key)
        return ('seed %d on PostgreSQL %d: user %s (%s), publication %s, admin %s\nvariables: %r\nrefusals: %r '
                '(before writing: %r)\nuncertain: %r\n--- schema SQL ---\n%s' % (
                    self.seed, self.major, self.user, self.user_state, self.publication_state,
                    'superuser' if self.admin['superuser'] else self.admin['user'], public, self.refusals, self.blocking,
                    self.uncertain, self.sql))


class _Builder:
    """Draws one source from ``random.Random(seed)``; each method draws one part of it."""

    def __init__(self, seed: int, major: int):
        self.rng = random.Random(seed)
        self.seed, self.major = seed, major
        self.prefix = 'g%d_' % seed
        self.sql: list[str] = []
        self.tables: list[Table] = []
        self.names_used: set[tuple[str, str]] = set()
        self.key_counter = 0

    def role(self, stem: str) -> str:
        return self.prefix + stem

    # -- roles and admin ------------------------------------------------------------------------------------------
    def draw_admin(self) -> dict[str, t.Any]:
        if self.rng.random() < 0.6:
            return dict(user='postgres', password=None, superuser=True)
        return dict(user=self.role('admin'), password='Adm1n-%d-$ecr"et' % self.seed, superuser=False)

    def create_roles(self, admin, member_of, others):
        for name in member_of + others:
            self.sql.append('CREATE ROLE %s NOLOGIN;' % quote_ident(name))
        if admin['superuser']:
            return
        attributes = 'CREATEROLE CREATEDB' + (' REPLICATION' if self.major >= 16 else '')
        self.sql.append('CREATE ROLE %s LOGIN NOSUPERUSER %s PASSWORD %s;' % (
            quote_ident(admin['user']), attributes, quote_literal(admin['password'])))
        options = ' WITH INHERIT TRUE, SET TRUE' if self.major >= 16 else ''
        for name in member_of:
            self.sql.append('GRANT %s TO %s%s;' % (quote_ident(name), quote_ident(admin['user']), options))
        self.sql.append("DO $$ BEGIN EXECUTE format('GRANT CREATE ON DATABASE %%I TO %%I', current_database(), %s); END $$;"
                        % quote_literal(admin['user']))

    # -- schemas and tables -----------------------------------------------------------------------------------------
    def draw_schemas(self, owners) -> list[str]:
        names = ['public'] + self.rng.sample(SCHEMA_NAMES, self.rng.randint(1, 3))
        if self.rng.random() < 0.05:
            names.append(DOTTED_SCHEMA)
        for name in names:
            if name != 'public':
                self.sql.append('CREATE SCHEMA %s AUTHORIZATION %s;' % (quote_ident(name), quote_ident(self.rng.choice(owners))))
            for owner in owners:
                self.sql.append('GRANT USAGE, CREATE ON SCHEMA %s TO %s;' % (quote_ident(name), quote_ident(owner)))
        return names

    def unique_name(self, schema: str, stem: str) -> str:
        name = stem
        while (schema, name) in self.names_used or any(name == used for _s, used in self.names_used):
            name = '%s_%d' % (stem, len(self.names_used))
        self.names_used.add((schema, name))
        return name

    def next_key(self) -> int:
        self.key_counter += 100
        return self.key_counter

    def add(self, table: Table) -> Table:
        self.tables.append(table)
        return table

    def columns(self, primary_key: bool, partitioned: bool) -> str:
        key = 'id, k' if partitioned else 'id'
        pk = ', PRIMARY KEY (%s)' % key if primary_key else ''
        return '(id bigint NOT NULL, k int NOT NULL, note text, payload jsonb%s)' % pk

    def draw_table(self, schema: str, owners: list[str]):
        kind = self.rng.choice(TABLE_KINDS)
        name = self.unique_name(schema, self.rng.choice(TABLE_STEMS))
        owner = self.rng.choice(owners)
        ref = qualified((schema, name))
        if kind in ('view', 'matview', 'foreign'):
            self.draw_other_relation(kind, schema, name, owner)
            return
        table = self.add(Table(schema, name, kind, owner, primary_key=self.rng.random() < 0.9, key=self.next_key()))
        persistence = 'UNLOGGED ' if kind == 'unlogged' else ''
        partition = ' PARTITION BY RANGE (k)' if kind == 'partitioned' else ''
        self.sql.append('CREATE %sTABLE %s %s%s;' % (persistence, ref, self.columns(table.primary_key, kind == 'partitioned'), partition))
        if kind == 'partitioned':
            self.draw_partitions(table, owners, levels=self.rng.randint(1, 3))
        else:
            self.draw_identity(table)
        self.draw_row_security(table)
        self.sql.append('ALTER TABLE %s OWNER TO %s;' % (ref, quote_ident(owner)))

    def draw_partitions(self, parent: Table, owners, levels: int):
        """Range partitions of k around the parent's key: a leaf for the key, maybe a sub-partitioned child, a default."""
        low = parent.key
        bounds = [(low, low + 10, 'leaf'), (low + 10, low + 20, 'sub' if levels > 1 else 'leaf')]
        if self.rng.random() < 0.5:
            bounds.append((None, None, 'default'))
        for start, end, shape in bounds:
            name = self.unique_name(parent.schema, '%s_p%s' % (parent.name, start if start is not None else 'default'))
            child = self.add(Table(parent.schema, name, 'partition', self.rng.choice(owners + [parent.owner] * 2),
                                   primary_key=parent.primary_key, parent=parent.ref,
                                   key=start if start is not None else low + 50))
            parent.children.append(child.ref)
            spec = 'DEFAULT' if start is None else 'FOR VALUES FROM (%d) TO (%d)' % (start, end)
            sub = ' PARTITION BY RANGE (k)' if shape == 'sub' else ''
            self.sql.append('CREATE TABLE %s PARTITION OF %s %s%s;' % (qualified(child.ref), qualified(parent.ref), spec, sub))
            if shape == 'sub':
                self.draw_sub_partitions(child, levels - 1)
            self.sql.append('ALTER TABLE %s OWNER TO %s;' % (qualified(child.ref), quote_ident(child.owner)))

    def draw_sub_partitions(self, parent: Table, levels: int):
        """One level down: a partition holding parent.key, itself partitioned while levels remain."""
        start = parent.key
        name = self.unique_name(parent.schema, '%s_s' % parent.name)
        child = self.add(Table(parent.schema, name, 'partition', parent.owner, primary_key=parent.primary_key,
                               parent=parent.ref, key=start))
        parent.children.append(child.ref)
        sub = ' PARTITION BY RANGE (k)' if levels > 1 else ''
        self.sql.append('CREATE TABLE %s PARTITION OF %s FOR VALUES FROM (%d) TO (%d)%s;' % (
            qualified(child.ref), qualified(parent.ref), start, start + 5, sub))
        if levels > 1:
            self.draw_sub_partitions(child, levels - 1)
        self.sql.append('ALTER TABLE %s OWNER TO %s;' % (qualified(child.ref), quote_ident(child.owner)))

    def draw_identity(self, table: Table):
        table.identity = self.rng.choice(IDENTITIES)
        ref = qualified(table.ref)
        if table.identity == 'full':
            self.sql.append('ALTER TABLE %s REPLICA IDENTITY FULL;' % ref)
        elif table.identity == 'nothing':
            self.sql.append('ALTER TABLE %s REPLICA IDENTITY NOTHING;' % ref)
        elif table.identity == 'index':
            index = quote_ident('%sux%d' % (self.prefix, len(self.tables)))
            self.sql.append('CREATE UNIQUE INDEX %s ON %s (k);' % (index, ref))
            self.sql.append('ALTER TABLE %s REPLICA IDENTITY USING INDEX %s;' % (ref, index))

    def draw_row_security(self, table: Table):
        if self.rng.random() < 0.04:
            table.row_security = self.rng.choice(['no_policy', 'policy'])
            self.sql.append('ALTER TABLE %s ENABLE ROW LEVEL SECURITY;' % qualified(table.ref))
            if table.row_security == 'policy':
                self.sql.append('CREATE POLICY %s ON %s USING (k >= 0);' % (quote_ident(self.prefix + 'pol'), qualified(table.ref)))

    def draw_other_relation(self, kind: str, schema: str, name: str, owner: str):
        self.add(Table(schema, name, kind, owner, primary_key=False))
        ref = qualified((schema, name))
        if kind == 'view':
            self.sql.append('CREATE VIEW %s AS SELECT 1 AS x;' % ref)
        elif kind == 'matview':
            self.sql.append('CREATE MATERIALIZED VIEW %s AS SELECT 1 AS x;' % ref)
        else:
            # A wrapper without a handler: a real foreign table in the catalog, with no extension to install.
            wrapper = quote_ident(self.prefix + 'fdw')
            if not any(line.startswith('CREATE FOREIGN DATA WRAPPER') for line in self.sql):
                self.sql.append('CREATE FOREIGN DATA WRAPPER %s;' % wrapper)
                self.sql.append('CREATE SERVER %s FOREIGN DATA WRAPPER %s;' % (quote_ident(self.prefix + 'srv'), wrapper))
            self.sql.append('CREATE FOREIGN TABLE %s (id bigint) SERVER %s;' % (ref, quote_ident(self.prefix + 'srv')))
        keyword = dict(view='VIEW', matview='MATERIALIZED VIEW', foreign='FOREIGN TABLE')[kind]
        self.sql.append('ALTER %s %s OWNER TO %s;' % (keyword, ref, quote_ident(owner)))


def _name_in_list(rng: random.Random, table: tuple[str, str], unqualified_ok: bool) -> str:
    """How a user writes a table in clickpipes_tables: bare, schema.table, or with double-quoted parts."""
    schema, name = table
    if unqualified_ok and '.' not in name and not name.startswith('"') and rng.random() < 0.3:
        return name

    def part(text):
        if '.' in text or text.startswith('"') or rng.random() < 0.3:
            return quote_ident(text)
        return text
    return '%s.%s' % (part(schema), part(name))


def generate(seed: int, major: int) -> Source:
    """The source of ``seed`` for a PostgreSQL ``major``: the same seed and major always give the same source."""
    b = _Builder(seed, major)
    rng = b.rng
    admin = b.draw_admin()
    member_of, alien = [b.role('app'), b.role('team')], b.role('alien')
    b.create_roles(admin, member_of, [alien, b.role('reader')])
    owners = member_of + ([admin['user']] if rng.random() < 0.3 else []) + ([alien] if rng.random() < 0.15 else [])
    schemas = b.draw_schemas(owners)
    for _index in range(rng.randint(2, 6)):
        b.draw_table(rng.choice(schemas), owners)

    user = b.role('cdc') if rng.random() < 0.8 else 'G%d CDC' % seed
    if rng.random() < 0.04:
        user = member_of[0]  # the role that owns tables: must be refused (issue #14, item 11)
    password = 'Cdc-%d-pa$$ \'w"o\\rd;--ünï' % seed
    roles = list(dict.fromkeys(member_of + [alien, b.role('reader')] + ([] if admin['superuser'] else [admin['user']]) + [user]))
    source = Source(seed=seed, major=major, sql='', variables={}, admin=admin, user=user, password=password, roles=roles,
                    owners=sorted(set(tb.owner for tb in b.tables)), tables=b.tables, user_state='absent',
                    publication_state='absent', scope=set(), published=set(), readable_before=set(), late_schemas=[],
                    alien=alien, refusals=[], blocking=[], uncertain=[])
    source.variables = dict(clickpipes_user=user, clickpipes_password=password,
                            clickpipes_update_password=rng.choice(['on_create', 'always']))
    _draw_scope(b, source, schemas)
    _draw_user_state(b, source)
    _draw_grants(b, source)
    _draw_publication(b, source)
    _expect(source)
    source.sql = '\n'.join(b.sql) + '\n'
    return source


def _draw_scope(b: _Builder, source: Source, schemas: list[str]):
    """clickpipes_schemas / _tables / _publication_mode, and the scope they mean."""
    rng = b.rng
    roots = [tb for tb in source.tables if tb.kind != 'partition']
    scoped_schemas = rng.sample(schemas, rng.randint(1, len(schemas)))
    modes = ['tables'] * 3 + (['schemas'] if b.major >= 15 else []) + ['all_tables']
    mode = rng.choice(modes if source.admin['superuser'] or rng.random() < 0.1 else ['tables'])
    listed: list[tuple[str, str]] = []
    names: list[str] = []
    if mode != 'schemas' and rng.random() < 0.4 and roots:
        listed = rng.sample([tb.ref for tb in roots], rng.randint(1, min(3, len(roots))))
        names = [_name_in_list(rng, ref, ref[0] in scoped_schemas) for ref in listed]
    if rng.random() < 0.06:
        if listed:
            names.append('%s.no_such_table' % quote_ident(scoped_schemas[0]))
        else:
            scoped_schemas.append('no such schema %d' % b.seed)
        source.refuse('a name in the scope does not exist')
    source.variables.update(clickpipes_schemas=scoped_schemas, clickpipes_tables=names, clickpipes_publication_mode=mode,
                            clickpipes_publication='g%d pub' % b.seed if rng.random() < 0.3 else 'clickpipes_publication')
    if listed:
        named = set(listed)
        if any(not source.table(ref).is_table for ref in listed):
            source.refuse('a name in clickpipes_tables is a view, materialized view or foreign table')
    else:
        # A schema scope leaves UNLOGGED tables out (PostgreSQL cannot publish them); the run names them in a warning.
        named = {tb.ref for tb in roots if tb.schema in scoped_schemas and tb.kind != 'unlogged'}
        source.late_schemas = [name for name in scoped_schemas if name in schemas]
    source.scope = {ref for ref in named | {d.ref for ref in named for d in source.descendants(ref)} if source.table(ref).is_table}
    if not source.scope:
        source.refuse('no table in the scope')
    if names and mode != 'tables':
        source.refuse('clickpipes_tables is given with publication mode %s' % mode)


def _draw_user_state(b: _Builder, source: Source):
    """The replication user as it was before the run; a managed-like admin before 16 needs it made in the console."""
    rng = b.rng
    managed = not source.admin['superuser']
    if source.user in source.owners or source.user == b.role('app'):
        source.user_state = 'owner'
        source.refuse('the replication user %s is a role that owns tables' % source.user)
        source.readable_before = {table.ref for table in source.tables if table.owner == source.user}
        return
    if managed and b.major < 16 and rng.random() < 0.7:
        source.user_state = 'ready'
    else:
        source.user_state = rng.choice(USER_STATES)
    state, always = source.user_state, source.variables['clickpipes_update_password'] == 'always'
    if state != 'absent':
        attributes = dict(ready='LOGIN REPLICATION', nologin='NOLOGIN REPLICATION', noreplication='LOGIN NOREPLICATION',
                          expired='LOGIN REPLICATION VALID UNTIL %s' % quote_literal(FAR_PAST),
                          other_password='LOGIN REPLICATION')[state]
        password = source.password if state != 'other_password' else 'another password %d' % b.seed
        # Hashed by the server: this is the fixture, logged before any invariant reads the log.
        b.sql.append('CREATE ROLE %s %s PASSWORD %s;' % (quote_ident(source.user), attributes, quote_literal(password)))
    if state == 'other_password' and not always:
        source.refuse('the existing user has another password and update_password is on_create', before_writing=False)
    if state == 'expired' and not always:
        source.refuse('the existing user\'s password expired (VALID UNTIL %s)' % FAR_PAST, before_writing=False)
    if state == 'expired' and always:
        source.uncertain.append('an expired user with update_password: always (may be repaired)')
    needs_alter = state in ('nologin', 'noreplication') or (always and state in ('other_password', 'expired'))
    if managed and (needs_alter or (state == 'absent' and b.major < 16)):
        # Before 16 only a superuser creates or alters REPLICATION roles; from 16 the admin needs ADMIN on the role.
        source.refuse('a managed-like admin cannot create or alter the replication user here (%s)' % state)


def _draw_grants(b: _Builder, source: Source):
    """Grants that were there before: to another role, default privileges, and some to the user itself."""
    rng = b.rng
    tables = [tb for tb in source.tables if tb.is_table]
    reader = quote_ident(b.role('reader'))
    for table in rng.sample(tables, min(len(tables), 2)):
        b.sql.append('GRANT SELECT ON %s TO %s;' % (qualified(table.ref), reader))
    if rng.random() < 0.5 and tables:
        table = rng.choice(tables)
        b.sql.append('ALTER DEFAULT PRIVILEGES FOR ROLE %s IN SCHEMA %s GRANT SELECT ON TABLES TO %s;' % (
            quote_ident(table.owner), quote_ident(table.schema), reader))
    if source.user_state in ('absent', 'owner'):
        return
    user = quote_ident(source.user)
    for table in rng.sample(tables, min(len(tables), rng.randint(0, 2))):
        b.sql.append('GRANT SELECT ON %s TO %s;' % (qualified(table.ref), user))
        source.readable_before.add(table.ref)


def _draw_publication(b: _Builder, source: Source):
    """The publication as a DBA may have left it; a managed-like admin owns the ones it is allowed to own."""
    rng = b.rng
    state = rng.choice(PUBLICATION_STATES)
    if state == 'in_schema' and b.major < 15 or state == 'via_root' and b.major < 13:
        state = 'absent'
    source.publication_state = state
    if state == 'absent':
        return
    name = quote_ident(source.variables['clickpipes_publication'])
    options = dict(publish='insert, update, delete, truncate', publish_via_partition_root=False)  # PostgreSQL's defaults
    if state == 'all_tables':
        target = 'FOR ALL TABLES'
    elif state == 'in_schema':
        target = 'FOR TABLES IN SCHEMA %s' % quote_ident(rng.choice(sorted({tb.schema for tb in source.tables})))
    else:
        # Tables a DBA could have published without breaking the application's UPDATE/DELETE.
        publishable = [tb for tb in source.tables if tb.kind in ('plain', 'partitioned') and (b.major >= 13 or tb.is_leaf)
                       and all(leaf.has_identity for leaf in map(source.table, source.leaves([tb.ref])))]
        chosen = rng.sample(publishable, min(len(publishable), rng.randint(1, 2)))
        target = ('FOR TABLE %s' % ', '.join(qualified(tb.ref) for tb in chosen)) if chosen else ''
    if state == 'insert_only':
        options['publish'] = 'insert'
    if state == 'via_root':
        options['publish_via_partition_root'] = True
    with_clause = "publish = '%s'" % options['publish']
    if b.major >= 13:
        with_clause += ', publish_via_partition_root = %s' % str(options['publish_via_partition_root']).lower()
    b.sql.append('CREATE PUBLICATION %s %s WITH (%s);' % (name, target, with_clause))
    if not source.admin['superuser'] and not target.startswith(('FOR ALL', 'FOR TABLES IN')):
        b.sql.append('ALTER PUBLICATION %s OWNER TO %s;' % (name, quote_ident(source.admin['user'])))
    source.publication_target = target


def published_before(source: Source) -> set[tuple[str, str]]:
    """The leaf tables the pre-existing publication covered, read from how it was created."""
    target = source.publication_target
    permanent = {tb.ref for tb in source.tables if tb.is_table and tb.kind != 'unlogged'}
    if source.publication_state == 'absent':
        return set()
    if target == 'FOR ALL TABLES':
        return source.leaves(permanent)
    if target.startswith('FOR TABLES IN SCHEMA'):
        schema = target.split('SCHEMA ', 1)[1][1:-1].replace('""', '"')
        return source.leaves(ref for ref in permanent if ref[0] == schema)
    return {ref for ref in source.leaves(permanent) if qualified(ref) in target
            or any(qualified(anc) in target for anc in _ancestors(source, ref))}


def _ancestors(source: Source, ref: tuple[str, str]) -> list[tuple[str, str]]:
    parent = source.table(ref).parent
    return [parent] + _ancestors(source, parent) if parent else []


def _expect(source: Source):
    """The leaf tables the publication must cover, and the reasons a sound run must refuse, from the description."""
    mode, state = source.variables['clickpipes_publication_mode'], source.publication_state
    permanent = {tb.ref for tb in source.tables if tb.is_table and tb.kind != 'unlogged'}
    before = published_before(source)
    if mode == 'all_tables':
        covered = source.leaves(permanent)
    elif mode == 'schemas':
        covered = source.leaves(ref for ref in permanent if ref[0] in source.variables['clickpipes_schemas'])
    else:
        covered = source.leaves(ref for ref in source.scope if ref in permanent)
    source.published = before | covered
    managed = not source.admin['superuser']

    for table in map(source.table, sorted(source.scope)):
        if table.kind == 'unlogged':
            source.refuse('UNLOGGED table %s named in clickpipes_tables cannot be published' % qualified(table.ref))
        if table.row_security:
            source.refuse('row-level security on %s hides rows from the user' % qualified(table.ref), before_writing=False)
        if '.' in table.schema or '.' in table.name:
            source.refuse('ClickPipes cannot take the dotted name %s' % qualified(table.ref))
        if managed and table.owner == source.alien:
            source.refuse('the admin is not a member of %s, which owns %s' % (table.owner, qualified(table.ref)))
    without_identity = sorted(ref for ref in source.published if not source.table(ref).has_identity)
    for ref in without_identity:
        if ref in before or state == 'insert_only':
            source.uncertain.append('%s has no replica identity and was published before the run' % qualified(ref))
        else:
            source.refuse('%s has no primary key or replica identity; publishing its UPDATE/DELETE breaks the '
                          'application' % qualified(ref))
    if managed and mode != 'tables':
        source.refuse('publication mode %s needs a superuser' % mode)
    if managed and state in ('all_tables', 'in_schema'):
        source.uncertain.append('the publication belongs to a superuser the managed-like admin cannot act as')
    if state in ('insert_only', 'via_root'):
        source.uncertain.append('the existing publication has options of its own (%s)' % state)
    if mode == 'all_tables' and state not in ('absent', 'all_tables'):
        source.uncertain.append('all_tables asked of an existing publication that lists tables')
