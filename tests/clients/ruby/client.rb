# A 5centscdn customer's Ruby client, in the style of 5centscdn's API reference examples
# (net/http, a JSON body, X-API-Key). The purge by files goes as a form in PHP's array
# syntax (`set_form_data`: files[]=…&files[]=…) with _METHOD=DELETE; the whole-zone purge
# removes the bytes (?delete=true).
#
#   ruby client.rb BASE_URL API_KEY ORIGIN_URL           create, read, update, cache, ssl
#   ruby client.rb BASE_URL API_KEY ORIGIN_URL ZONE_ID   purge files, purge the zone
require 'net/http'
require 'json'

BASE, KEY, ORIGIN, ZONEID = ARGV

def call(method, path, body = nil, message = nil, form: nil)
  uri = URI(BASE + path)
  request = (method == 'GET' ? Net::HTTP::Get : Net::HTTP::Post).new(uri)
  request['X-API-Key'] = KEY
  if form
    request.set_form_data(form)
  elsif body
    request['Content-Type'] = 'application/json'
    request.body = body.to_json
  end
  response = Net::HTTP.start(uri.host, uri.port) { |http| http.request(request) }
  puts "> #{method} #{uri}"
  puts "> #{request.body}" if request.body
  puts "< #{response.code}", "< #{response.body}", ''
  answer = JSON.parse(response.body)
  unless response.code == '200' && answer['result'] == 'success' &&
         (message.nil? || answer['message'] == message)
    abort "unexpected answer to #{method} #{path}"
  end
  answer
end

updated = 'Zone updated successfully'
if ZONEID.nil?
  zone = call('POST', '/zones/http/pull/new',
              { _METHOD: 'PUT', alias: 'ruby-client', origin: ORIGIN, optimize: 'http' })['zone']
  id = zone['id']
  call('GET', "/zones/http/pull/#{id}")
  call('POST', "/zones/http/pull/#{id}", { origin: ORIGIN, cname: 'ruby.clients.test' }, updated)
  call('POST', "/zones/http/pull/#{id}/cache", { cache: '1h', expiry: '1d' }, updated)
  call('POST', "/zones/http/pull/#{id}/ssl", { http2: 'Y', redirect: 'N', mode: 'S' }, updated)
else
  call('POST', "/zones/http/pull/#{ZONEID}/purge", nil, 'Zone Purged',
       form: { '_METHOD' => 'DELETE', 'files[]' => ['/clients/a.css', '/clients/c.css'] })
  call('POST', "/zones/http/pull/#{ZONEID}/purge?delete=true", nil, 'Zone Purged')
end
