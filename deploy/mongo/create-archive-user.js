// Creates the archive's own MongoDB user with only the role in archive-role.json.
// The mongo image runs this once, when it initialises an empty data volume
// (/docker-entrypoint-initdb.d, as the root user, before authentication is on); on later
// starts the volume exists and nothing here runs again. docker-compose.yml mounts this
// file and archive-role.json; the variables come from the mongo service's environment.
const env = process.env;
for (const name of ["MONGO_ARCHIVE_DATABASE", "MONGO_ARCHIVE_USERNAME", "MONGO_ARCHIVE_PASSWORD"]) {
  if (!env[name]) {
    throw new Error(`set ${name} in .env: the archive's MongoDB user needs it`);
  }
}
const events = env.AUDIT_EVENTS_COLLECTION || "auditevents";
const batches = env.AUDIT_BATCHES_COLLECTION || "archivebatches";
const dbName = env.MONGO_ARCHIVE_DATABASE;
const archive = db.getSiblingDB(dbName);

// A role from one of the JSON files next to this script, and a user with only it.
function createRoleAndUser(file, user, pwd) {
  const spec = JSON.parse(require("fs").readFileSync(`/docker-entrypoint-initdb.d/${file}`, "utf8"));
  const privileges = spec.privileges.map((p) => ({
    resource: {
      db: dbName,
      collection: p.collection.replace("{events}", events).replace("{batches}", batches),
    },
    actions: p.actions,
  }));
  archive.createRole({ role: spec.role, privileges: privileges, roles: [] });
  archive.createUser({ user: user, pwd: pwd, roles: [{ role: spec.role, db: dbName }] });
  print(`created ${user} in ${dbName} with role ${spec.role}`);
}

createRoleAndUser("archive-role.json", env.MONGO_ARCHIVE_USERNAME, env.MONGO_ARCHIVE_PASSWORD);
// The producing application's user (writer-role.json: insert and read events, nothing
// else), when its password is set: docs/deployment.md "The producing application".
if (env.MONGO_WRITER_PASSWORD) {
  createRoleAndUser("writer-role.json", env.MONGO_WRITER_USERNAME || "audit-writer", env.MONGO_WRITER_PASSWORD);
}
