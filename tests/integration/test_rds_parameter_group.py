"""The rds role's parameter group automation (amazon.aws) against moto's RDS API server on loopback.

moto holds the parameter groups, instances and clusters and records every API request (MOTO_ENABLE_RECORDING), so the
tests read what was written from the server's side. What moto does not imitate, and how the tests stand in:
- a new parameter group has no parameters (AWS lists every parameter of the family with its engine default): each test
  group is seeded with the two parameters as AWS describes them (data type, static or dynamic, modifiable);
- ParameterApplyStatus is always in-sync and a reboot changes nothing: whether a reboot is pending comes from the
  server itself (wal_level, on a harness cluster started with wal_level=replica), and the reboot is seen as the
  RebootDBInstance request.
Nothing here can reach AWS: every call names moto's endpoint and carries dummy credentials.
"""

from __future__ import annotations

import base64
import json
import os
import socket
import subprocess
import time
import urllib.parse
import uuid

import boto3
import pytest

import pgcluster
import rds_shape
from conftest import MAJORS
from playbook import VENV_BIN, run_playbook

REGION = 'us-east-1'
ACCESS_KEY = 'AKIAPGCDCTESTKEY0001'
SECRET_KEY = 'pgcdc-moto-secret-Zx81-never-printed'
# As AWS describes them (DescribeDBParameters); moto returns what it is given.
SEEDED = [
    dict(ParameterName='rds.logical_replication', ParameterValue='0', DataType='boolean', ApplyType='static',
         IsModifiable=True, ApplyMethod='pending-reboot', Source='engine-default'),
    dict(ParameterName='max_slot_wal_keep_size', ParameterValue='-1', DataType='integer', ApplyType='dynamic',
         IsModifiable=True, ApplyMethod='immediate', Source='engine-default'),
]
WRITES = {'ModifyDBParameterGroup', 'ModifyDBClusterParameterGroup', 'RebootDBInstance', 'CreateDBParameterGroup',
          'CreateDBClusterParameterGroup', 'ModifyDBInstance', 'ModifyDBCluster'}
AUTOMATION = 'pgcdc.clickpipes.rds : '
REBOOT_TASK = AUTOMATION + 'Reboot the database so that rds.logical_replication applies (clickpipes_rds_allow_reboot)'
REPORT_TASK = AUTOMATION + 'Report the parameter group'
REFUSE_TASK = AUTOMATION + 'Refuse a parameter group the database does not use'
ENGINE_TASK = 'pgcdc.clickpipes.source : Check the source, create what it lacks (user, grants, publication), check again'


def free_port():
    with socket.socket() as probe:
        probe.bind(('127.0.0.1', 0))
        return probe.getsockname()[1]


class Moto:
    """moto_server on 127.0.0.1 with request recording."""

    def __init__(self, workdir):
        self.port = free_port()
        self.url = 'http://127.0.0.1:%d' % self.port
        self.recording = workdir / 'recording.jsonl'
        self.log = (workdir / 'moto.log').open('w')
        env = dict(os.environ, MOTO_ENABLE_RECORDING='true', MOTO_RECORDER_FILEPATH=str(self.recording))
        self.process = subprocess.Popen([os.path.join(VENV_BIN, 'moto_server'), '-H', '127.0.0.1', '-p', str(self.port)],
                                        env=env, stdout=self.log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
        self._wait()
        self.rds = self.client('rds')
        self.subnet_group = self._subnet_group()

    def client(self, service):
        return boto3.client(service, endpoint_url=self.url, region_name=REGION, aws_access_key_id=ACCESS_KEY,
                            aws_secret_access_key=SECRET_KEY)

    def _subnet_group(self):
        """A DB subnet group in a VPC, as every AWS database has (amazon.aws.rds_instance reads it)."""
        ec2 = self.client('ec2')
        vpc = ec2.create_vpc(CidrBlock='10.0.0.0/16')['Vpc']['VpcId']
        subnets = [ec2.create_subnet(VpcId=vpc, CidrBlock='10.0.%d.0/24' % index, AvailabilityZone=REGION + zone)['Subnet']['SubnetId']
                   for index, zone in enumerate('ab')]
        self.rds.create_db_subnet_group(DBSubnetGroupName='clickpipes', DBSubnetGroupDescription='ClickPipes source', SubnetIds=subnets)
        return 'clickpipes'

    def _wait(self):
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError('moto_server exited with %s (see %s)' % (self.process.returncode, self.log.name))
            try:
                socket.create_connection(('127.0.0.1', self.port), timeout=1).close()
                return
            except OSError:
                time.sleep(0.2)
        raise RuntimeError('moto_server did not listen on port %d within 30 s' % self.port)

    def stop(self):
        self.process.terminate()
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        self.log.close()

    def mark(self):
        return self.recording.stat().st_size if self.recording.exists() else 0

    def requests_since(self, mark):
        """(Action, parameters) of every request recorded after ``mark``."""
        if not self.recording.exists():
            return []
        with self.recording.open() as stream:
            stream.seek(mark)
            records = [json.loads(line) for line in stream if line.strip()]
        requests = []
        for record in records:
            body = record.get('body') or ''
            body = urllib.parse.parse_qs(base64.b64decode(body).decode() if record.get('body_encoded') else body)
            if 'Action' in body:
                requests.append((body['Action'][0], {key: values[0] for key, values in body.items()}))
        return requests

    def writes_since(self, mark):
        return [(action, params) for action, params in self.requests_since(mark) if action in WRITES]

    def instance_group(self, name):
        return {p['ParameterName']: p.get('ParameterValue') for p in self.rds.describe_db_parameters(DBParameterGroupName=name)['Parameters']}

    def cluster_group(self, name):
        return {p['ParameterName']: p.get('ParameterValue')
                for p in self.rds.describe_db_cluster_parameters(DBClusterParameterGroupName=name)['Parameters']}

    def rds_instance(self, seeded=True):
        """A DB instance using a fresh custom parameter group (``seeded``: holding SEEDED): (instance id, group name)."""
        suffix = uuid.uuid4().hex[:8]
        group, instance = 'cp-%s' % suffix, 'db-%s' % suffix
        self.rds.create_db_parameter_group(DBParameterGroupName=group, DBParameterGroupFamily='postgres16', Description='ClickPipes source')
        if seeded:
            self.rds.modify_db_parameter_group(DBParameterGroupName=group, Parameters=SEEDED)
        self.rds.create_db_instance(DBInstanceIdentifier=instance, DBInstanceClass='db.t3.micro', Engine='postgres',
                                    EngineVersion='16.3', MasterUsername='admin_user', MasterUserPassword='not-used-1',
                                    AllocatedStorage=20, DBParameterGroupName=group, DBSubnetGroupName=self.subnet_group)
        return instance, group

    def aurora_cluster(self):
        """An Aurora cluster using a fresh seeded cluster parameter group, with a writer: (cluster id, group, writer)."""
        suffix = uuid.uuid4().hex[:8]
        group, cluster, writer = 'ccp-%s' % suffix, 'aurora-%s' % suffix, 'aurora-%s-1' % suffix
        self.rds.create_db_cluster_parameter_group(DBClusterParameterGroupName=group, DBParameterGroupFamily='aurora-postgresql16',
                                                   Description='ClickPipes source')
        self.rds.modify_db_cluster_parameter_group(DBClusterParameterGroupName=group, Parameters=SEEDED)
        self.rds.create_db_cluster(DBClusterIdentifier=cluster, Engine='aurora-postgresql', EngineVersion='16.4',
                                   MasterUsername='admin_user', MasterUserPassword='not-used-1',
                                   DBClusterParameterGroupName=group, DBSubnetGroupName=self.subnet_group)
        self.rds.create_db_instance(DBInstanceIdentifier=writer, DBClusterIdentifier=cluster, Engine='aurora-postgresql',
                                    DBInstanceClass='db.r6g.large', DBSubnetGroupName=self.subnet_group)
        return cluster, group, writer


@pytest.fixture(autouse=True)
def newest_major_only(request, pg):
    """The automation talks to AWS; the server only tells whether wal_level is logical and whether
    max_slot_wal_keep_size exists (13+): the newest major covers the first, the dynamic-parameter case runs on the
    oldest too for the second."""
    if pg.major != max(MAJORS) and not (request.node.name.startswith('test_only_the_dynamic') and pg.major == min(MAJORS)):
        pytest.skip('runs on the newest major of PGCDC_MAJORS (%d); the dynamic-parameter case also on the oldest' % max(MAJORS))


@pytest.fixture(scope='module')
def moto(tmp_path_factory):
    server = Moto(tmp_path_factory.mktemp('moto'))
    yield server
    server.stop()


@pytest.fixture(scope='module')
def replica(pg):
    """A server without logical replication, as RDS is before rds.logical_replication applies."""
    cluster = pgcluster.start_cluster(pg.major, settings={'wal_level': 'replica'}, name='pg%d_rds_replica' % pg.major)
    cluster.execute('CREATE TABLE orders (id int PRIMARY KEY)')
    yield cluster
    cluster.destroy()


def rds_role(cluster, moto, group, identifier, **extra):
    variables = dict(clickpipes_login_host=cluster.host, clickpipes_login_port=cluster.port, clickpipes_login_user=cluster.superuser,
                     clickpipes_login_password=cluster.password, clickpipes_login_db='postgres', clickpipes_ssl_mode='disable',
                     clickpipes_fail_on='never', clickpipes_rds_parameter_group=group, clickpipes_rds_db_identifier=identifier,
                     clickpipes_rds_region=REGION, clickpipes_rds_endpoint_url=moto.url,
                     clickpipes_rds_access_key=ACCESS_KEY, clickpipes_rds_secret_key=SECRET_KEY)
    variables.update(extra)
    # As the collection's playbooks include it: the role's own tasks carry the phase tags.
    return [{'name': 'Prepare an RDS source', 'ansible.builtin.include_role': {'name': 'pgcdc.clickpipes.rds'}, 'vars': variables,
             'tags': ['always']}]


# No AWS configuration of the machine's may take part; moto's endpoint is named on every call.
ISOLATED = dict(AWS_CONFIG_FILE=os.devnull, AWS_SHARED_CREDENTIALS_FILE=os.devnull, AWS_EC2_METADATA_DISABLED='true',
                AWS_PROFILE=None, AWS_ACCESS_KEY_ID=None, AWS_SECRET_ACCESS_KEY=None, AWS_SESSION_TOKEN=None)


def run_rds(cluster, moto, group, identifier, check=False, verbosity=0, env=None, **extra):
    return run_playbook(rds_role(cluster, moto, group, identifier, **extra), check=check, verbosity=verbosity,
                        env=dict(ISOLATED, **(env or {})))


def assert_waits_for_logical_replication(run):
    """The run fails, and the source role says why: logical replication is not on yet (a reboot away)."""
    assert run.rc == 2, run
    assert run.status(ENGINE_TASK) == 'failed' and 'wal_level' in run.result(ENGINE_TASK)['error_ids'], run


def wal_keep_mb(cluster):
    """What the role sets: the check's recommendation (the 100GB target on an idle server), in MB; none before 13."""
    return {'max_slot_wal_keep_size': str(100 * 1024)} if cluster.major >= 13 else {}


def test_sets_both_parameters_and_reports_the_pending_reboot_without_rebooting(moto, replica):
    instance, group = moto.rds_instance()
    mark = moto.mark()
    run = run_rds(replica, moto, group, instance)
    # The source is still not ready, and the run says so: the parameter group step is not a success on its own.
    assert_waits_for_logical_replication(run)
    values = moto.instance_group(group)
    assert values['rds.logical_replication'] == '1'
    assert values['max_slot_wal_keep_size'] == wal_keep_mb(replica).get('max_slot_wal_keep_size', '-1')
    writes = moto.writes_since(mark)
    assert [action for action, _params in writes] == ['ModifyDBParameterGroup'], writes
    # A static parameter: everything goes with pending-reboot, applied by the reboot it needs anyway.
    assert writes[0][1]['Parameters.Parameter.1.ApplyMethod'] == 'pending-reboot', writes
    assert run.status(REBOOT_TASK) == 'skipped'
    report = run.result(REPORT_TASK)['msg']
    assert 'REBOOT PENDING' in report and instance in report and 'clickpipes_rds_allow_reboot: true' in report, report
    assert 'wal_level is replica' in report, report

    again = moto.mark()
    rerun = run_rds(replica, moto, group, instance)
    assert_waits_for_logical_replication(rerun)
    assert moto.writes_since(again) == [], 'a re-run wrote again'
    assert 'already there' in rerun.result(REPORT_TASK)['msg'] and 'REBOOT PENDING' in rerun.result(REPORT_TASK)['msg']


def test_reboots_only_when_allowed(moto, replica):
    instance, group = moto.rds_instance()
    mark = moto.mark()
    run = run_rds(replica, moto, group, instance, clickpipes_rds_allow_reboot=True)
    # moto's reboot changes nothing, so the harness server still runs without logical replication.
    assert_waits_for_logical_replication(run)
    reboots = [params for action, params in moto.writes_since(mark) if action == 'RebootDBInstance']
    assert [params['DBInstanceIdentifier'] for params in reboots] == [instance]
    assert 'Rebooted %s' % instance in run.result(REPORT_TASK)['msg']


def test_check_mode_writes_nothing_and_says_what_it_would_do(moto, replica):
    instance, group = moto.rds_instance()
    before = moto.instance_group(group)
    mark = moto.mark()
    run = run_rds(replica, moto, group, instance, check=True, clickpipes_rds_allow_reboot=True)
    assert_waits_for_logical_replication(run)
    assert moto.writes_since(mark) == []
    assert moto.instance_group(group) == before
    # amazon.aws.rds_instance_param_group says "no change" in check mode; the role does not repeat that.
    assert run.result(AUTOMATION + 'Set the parameters in the DB parameter group')['changed'] is True
    assert run.result(REBOOT_TASK)['changed'] is True
    report = run.result(REPORT_TASK)['msg']
    assert report.startswith('Would set rds.logical_replication = 1') and 'Would reboot %s' % instance in report, report


@pytest.fixture(scope='module')
def logical(pg):
    """A server with logical replication on, shaped as RDS is once it applies (rds.* settings, rds_replication)."""
    cluster = pgcluster.start_cluster(pg.major, settings=rds_shape.settings(), name='pg%d_rds_logical' % pg.major)
    cluster.execute('CREATE ROLE rds_replication; CREATE TABLE orders (id int PRIMARY KEY)')
    yield cluster
    cluster.destroy()


def test_only_the_dynamic_parameter_needs_no_reboot(moto, logical):
    pg = logical
    instance, group = moto.rds_instance()
    mark = moto.mark()
    run = run_rds(pg, moto, group, instance, clickpipes_rds_allow_reboot=True)
    assert run.rc == 0, run
    writes = moto.writes_since(mark)
    if pg.major < 13:
        # wal_level is logical and there is no max_slot_wal_keep_size: nothing to set, and AWS is not called at all.
        assert moto.requests_since(mark) == [] and run.status(REPORT_TASK) == 'skipped'
        return
    assert [action for action, _params in writes] == ['ModifyDBParameterGroup'], writes
    assert writes[0][1]['Parameters.Parameter.1.ParameterName'] == 'max_slot_wal_keep_size'
    assert writes[0][1]['Parameters.Parameter.1.ApplyMethod'] == 'immediate'
    assert moto.instance_group(group)['rds.logical_replication'] == '0'
    assert 'No reboot is needed' in run.result(REPORT_TASK)['msg']


def test_a_group_the_instance_does_not_use_fails_before_any_change(moto, replica):
    instance, _own_group = moto.rds_instance()
    _other_instance, other_group = moto.rds_instance()
    before = moto.instance_group(other_group)
    mark = moto.mark()
    run = run_rds(replica, moto, other_group, instance)
    assert run.rc == 2, run
    message = run.result(REFUSE_TASK)['msg']
    assert 'uses the DB parameter group %s, not %s' % (_own_group, other_group) in message and 'Modify' in message, message
    assert moto.writes_since(mark) == [] and moto.instance_group(other_group) == before


def test_a_parameter_the_group_does_not_have_fails_the_run(moto, replica):
    # amazon.aws.rds_instance_param_group lists such a parameter in errors and does not fail by itself.
    instance, group = moto.rds_instance(seeded=False)
    mark = moto.mark()
    run = run_rds(replica, moto, group, instance)
    assert run.rc == 2, run
    task = AUTOMATION + 'Set the parameters in the DB parameter group'
    assert run.status(task) == 'failed' and 'rds.logical_replication' in ' '.join(run.result(task)['errors']), run
    assert moto.writes_since(mark) == [] and moto.instance_group(group) == {}


def test_an_unknown_instance_fails_and_says_what_to_check(moto, replica):
    _instance, group = moto.rds_instance()
    run = run_rds(replica, moto, group, 'no-such-db')
    assert run.rc == 2, run
    assert run.result(REFUSE_TASK)['msg'].startswith('There is no DB instance no-such-db in the region %s' % REGION), run


def test_aurora_sets_the_cluster_group_and_reboots_the_writer(moto, replica):
    cluster, group, writer = moto.aurora_cluster()
    mark = moto.mark()
    run = run_rds(replica, moto, group, cluster, clickpipes_provider='aurora', clickpipes_rds_allow_reboot=True)
    assert_waits_for_logical_replication(run)
    values = moto.cluster_group(group)
    assert values['rds.logical_replication'] == '1'
    assert values['max_slot_wal_keep_size'] == wal_keep_mb(replica).get('max_slot_wal_keep_size', '-1')
    writes = moto.writes_since(mark)
    assert [action for action, _params in writes] == ['ModifyDBClusterParameterGroup', 'RebootDBInstance'], writes
    assert writes[1][1]['DBInstanceIdentifier'] == writer


def test_aurora_check_mode_writes_nothing(moto, replica):
    cluster, group, _writer = moto.aurora_cluster()
    before = moto.cluster_group(group)
    mark = moto.mark()
    run = run_rds(replica, moto, group, cluster, check=True, clickpipes_provider='aurora', clickpipes_rds_allow_reboot=True)
    assert_waits_for_logical_replication(run)
    assert moto.writes_since(mark) == [] and moto.cluster_group(group) == before
    assert run.result(AUTOMATION + 'Set the parameters in the DB cluster parameter group')['changed'] is True


# (tags, skip tags, check_only, whether the automation runs): it is part of the prepare phase, as the source role's tags select it.
PHASES = [('preflight', '', False, False), ('', 'prepare', False, False), ('prepare', '', False, True), ('', '', True, False)]


def test_the_phase_tags_and_check_only_select_it_as_the_prepare_phase(moto, replica):
    instance, group = moto.rds_instance()
    for tags, skip_tags, check_only, runs in PHASES:
        mark = moto.mark()
        run = run_rds(replica, moto, group, instance, clickpipes_check_only=check_only,
                      env=dict(ANSIBLE_RUN_TAGS=tags or None, ANSIBLE_SKIP_TAGS=skip_tags or None))
        assert run.status(ENGINE_TASK) in ('ok', 'failed'), run  # the source role ran (its result is not the point here)
        ran = [action for action, _params in moto.requests_since(mark)]
        assert ('ModifyDBParameterGroup' in ran) is runs and (ran == []) is not runs, (tags, skip_tags, check_only, ran)


def test_off_by_default_and_the_secret_key_never_shows(moto, replica):
    instance, group = moto.rds_instance()
    mark = moto.mark()
    off = run_rds(replica, moto, '', instance)
    assert_waits_for_logical_replication(off)
    assert moto.requests_since(mark) == [] and off.status(AUTOMATION + 'Set logical replication in the parameter group with amazon.aws (opt-in)') == 'skipped'
    shown = run_rds(replica, moto, group, instance, verbosity=3)
    assert_waits_for_logical_replication(shown)
    assert 'REBOOT PENDING' in shown.result(REPORT_TASK)['msg']
    assert SECRET_KEY not in shown.stdout + shown.stderr
    assert SECRET_KEY not in json.dumps(shown.all_results)
