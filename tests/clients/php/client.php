<?php
// A 5centscdn customer's PHP client: the calls of 5centscdn's WordPress plugin
// (5centscdn/WordPress, inc/fivecentscdnApi.php): Guzzle with form_params, `x-api-key`,
// `_METHOD` in the body. The plugin never creates a zone; create follows its style.
//
//   php client.php BASE_URL API_KEY ORIGIN_URL           create, read, update, cache, ssl
//   php client.php BASE_URL API_KEY ORIGIN_URL ZONE_ID   purge files, purge the zone
require '/usr/share/php/GuzzleHttp/autoload.php';

use GuzzleHttp\Client;
use GuzzleHttp\HandlerStack;
use GuzzleHttp\Middleware;
use Psr\Http\Message\RequestInterface;

[, $base, $key, $origin] = $argv;
$zoneid = $argv[4] ?? null;
$cname = 'php.clients.test';

$stack = HandlerStack::create();
$stack->push(Middleware::tap(function (RequestInterface $request) {
    echo "> {$request->getMethod()} {$request->getUri()}\n";
    if ($request->hasHeader('Content-Type')) {
        echo "> Content-Type: {$request->getHeaderLine('Content-Type')}\n";
        echo "> {$request->getBody()}\n";
    }
}));
$client = new Client(['handler' => $stack, 'http_errors' => false]);
$api = rtrim($base, '/') . '/';
$headers = ['Accept' => 'application/json', 'x-api-key' => $key];

$call = function (string $method, string $path, ?array $form = null, ?string $message = null)
    use ($client, $api, $headers): array {
    $options = ['headers' => $headers];
    if ($form !== null) {
        $options['form_params'] = $form;
    }
    $res = $client->request($method, $api . $path, $options);
    $body = (string) $res->getBody();
    echo "< {$res->getStatusCode()}\n< $body\n\n";
    $answer = json_decode($body, true);
    if ($res->getStatusCode() !== 200 || ($answer['result'] ?? null) !== 'success'
        || ($message !== null && ($answer['message'] ?? null) !== $message)) {
        fwrite(STDERR, "unexpected answer to $method $path\n");
        exit(1);
    }
    return $answer;
};

if ($zoneid === null) {
    $zone = $call('POST', 'zones/http/pull/new',
        ['_METHOD' => 'PUT', 'alias' => 'php-client', 'origin' => $origin])['zone'];
    $id = $zone['id'];
    $call('GET', 'zones/http/pull');                          // listPullZones
    $call('GET', "zones/http/pull/$id");                      // getPullZones
    $call('POST', "zones/http/pull/$id",                      // updatePullZoneCname
        ['origin' => $origin, 'optimize' => 'http', 'cnames' => $cname],
        'Zone updated successfully');
    $call('POST', "zones/http/pull/$id/cache",
        ['cache' => ['cache' => '1h', 'expiry' => '1d']], 'Zone updated successfully');
    $call('POST', "zones/http/pull/$id/ssl",                  // updatePullZoneSsl
        ['http2' => 'Y', 'enabled' => 'N', 'mode' => 'S', 'redirect' => 'N'],
        'Zone updated successfully');
} else {
    // purgePullZoneFile: the plugin sends the pages' full URLs.
    $call('POST', "zones/http/pull/$zoneid/purge",
        ['_METHOD' => 'DELETE', 'files' => ["http://$cname/clients/a.css", "http://$cname/clients/c.css"]],
        'Zone Purged');
    $call('POST', "zones/http/pull/$zoneid/purge", ['_METHOD' => 'DELETE'], 'Zone Purged'); // purgePullZone
}
