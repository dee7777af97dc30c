# Seeds a Redmine 5 for tokenproviders integration tests. Idempotent.
# Run by .ci/redmine.sh as:
#   cd /usr/share/redmine && RAILS_ENV=production X_DEBIAN_SITEID=default \
#     OUT_JSON=/path/out.json REDMINE_URL=http://127.0.0.1:PORT ruby bin/rails runner redmine_seed.rb
# Existing API keys are kept; passwords are reset to the fixed values below when they differ.
require 'json'
require 'fileutils'

out_path = ENV.fetch('OUT_JSON')
url = ENV.fetch('REDMINE_URL')
identifier = ENV.fetch('REDMINE_PROJECT', 'tokenproviders-demo')

USERS = [
  # login,  firstname, lastname,  password
  %w[tpbot  Token      Bot        tpbot-pass-4711],
  %w[alice  Alice      Example    alice-pass-4711],
  %w[bob    Bob        Example    bob-pass-4711]
].freeze
PERMISSIONS = %i[view_issues add_issues add_issue_notes edit_issues].freeze

ActionMailer::Base.perform_deliveries = false # no security notification mails
# The server may be booting or serving at the same time: wait for SQLite locks instead of failing.
ActiveRecord::Base.connection.raw_connection.busy_timeout(10_000)

result = nil
ActiveRecord::Base.transaction do
  # Trackers, statuses, priorities, roles, workflows (same as `rake redmine:load_default_data`).
  Redmine::DefaultData::Loader.load('en') if Redmine::DefaultData::Loader.no_data?
  status = IssueStatus.sorted.first || IssueStatus.create!(name: 'New', is_closed: false)
  Tracker.create!(name: 'Bug', default_status: status) if Tracker.none?
  unless IssuePriority.active.where(is_default: true).exists?
    prio = IssuePriority.active.first || IssuePriority.new(name: 'Normal')
    prio.is_default = true
    prio.save!
  end

  Setting.rest_api_enabled = '1'

  role = Role.find_or_initialize_by(name: 'tokenproviders member')
  role.assignable = true
  role.issues_visibility = 'all'
  role.permissions = (role.permissions | PERMISSIONS)
  role.save!
  source = Role.find_by(name: 'Developer')
  if source && WorkflowTransition.where(role_id: role.id).none?
    WorkflowRule.copy(nil, source, nil, role)
  end

  admin = User.find_by(login: 'admin', admin: true) ||
          User.where(admin: true, status: User::STATUS_ACTIVE).order(:id).first
  raise 'no active admin user in the database' unless admin

  users = USERS.map do |login, first, last, password|
    u = User.find_by(login: login) || User.new
    u.login = login
    u.firstname = first
    u.lastname = last
    u.mail = "#{login}@example.com" if u.mail.blank?
    u.status = User::STATUS_ACTIVE
    u.must_change_passwd = false
    u.admin = false
    unless u.persisted? && u.check_password?(password)
      u.password = password
      u.password_confirmation = password
    end
    u.save!
    [u, password]
  end

  project = Project.find_by(identifier: identifier) || Project.new(identifier: identifier)
  project.name = 'tokenproviders demo' if project.name.blank?
  project.is_public = false
  project.status = Project::STATUS_ACTIVE
  project.trackers = Tracker.sorted.to_a
  project.save!
  project.enabled_module_names = (project.enabled_module_names | ['issue_tracking'])

  users.each do |u, _|
    member = Member.find_by(project_id: project.id, user_id: u.id) ||
             Member.new(project: project, principal: u)
    member.role_ids = (member.role_ids | [role.id])
    member.save!
  end

  result = {
    'url' => url,
    'project' => identifier,
    'admin_key' => admin.api_key,
    'users' => users.to_h do |u, password|
      [u.login, { 'id' => u.id, 'login' => u.login, 'api_key' => u.api_key, 'password' => password }]
    end
  }
end

FileUtils.mkdir_p(File.dirname(out_path))
tmp = "#{out_path}.tmp#{Process.pid}"
File.write(tmp, JSON.pretty_generate(result) + "\n")
File.rename(tmp, out_path)
puts "wrote #{out_path}"
