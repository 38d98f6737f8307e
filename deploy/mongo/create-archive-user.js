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
const spec = JSON.parse(require("fs").readFileSync("/docker-entrypoint-initdb.d/archive-role.json", "utf8"));
const dbName = env.MONGO_ARCHIVE_DATABASE;
const archive = db.getSiblingDB(dbName);

const privileges = spec.privileges.map((p) => ({
  resource: {
    db: dbName,
    collection: p.collection.replace("{events}", events).replace("{batches}", batches),
  },
  actions: p.actions,
}));
archive.createRole({ role: spec.role, privileges: privileges, roles: [] });
archive.createUser({
  user: env.MONGO_ARCHIVE_USERNAME,
  pwd: env.MONGO_ARCHIVE_PASSWORD,
  roles: [{ role: spec.role, db: dbName }],
});
print(`created ${env.MONGO_ARCHIVE_USERNAME} in ${dbName} with role ${spec.role}`);
