// A 5centscdn customer's Go client, in the style of 5centscdn's API reference examples
// (net/http, a JSON body, X-API-Key). The whole-zone purge removes the bytes (?delete=true).
//
//	go run client.go BASE_URL API_KEY ORIGIN_URL           create, read, update, cache, ssl
//	go run client.go BASE_URL API_KEY ORIGIN_URL ZONE_ID   purge files, purge the zone
package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
)

var base, key, origin = os.Args[1], os.Args[2], os.Args[3]

func call(method, path string, body any, message string) map[string]any {
	var data []byte
	if body != nil {
		data, _ = json.Marshal(body)
	}
	req, err := http.NewRequest(method, base+path, bytes.NewBuffer(data))
	if err != nil {
		panic(err)
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	req.Header.Set("X-API-Key", key)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		panic(err)
	}
	defer resp.Body.Close()
	text, _ := io.ReadAll(resp.Body)
	fmt.Printf("> %s %s\n", method, base+path)
	if body != nil {
		fmt.Printf("> %s\n", data)
	}
	fmt.Printf("< %d\n< %s\n\n", resp.StatusCode, text)
	var answer map[string]any
	if json.Unmarshal(text, &answer) != nil || resp.StatusCode != 200 ||
		answer["result"] != "success" || (message != "" && answer["message"] != message) {
		fmt.Fprintf(os.Stderr, "unexpected answer to %s %s\n", method, path)
		os.Exit(1)
	}
	return answer
}

func main() {
	const updated = "Zone updated successfully"
	if len(os.Args) < 5 {
		create := map[string]any{"_METHOD": "PUT", "alias": "go-client", "origin": origin, "optimize": "http"}
		zone := call("POST", "/zones/http/pull/new", create, "")["zone"].(map[string]any)
		id := fmt.Sprint(zone["id"])
		call("GET", "/zones/http/pull/"+id, nil, "")
		call("POST", "/zones/http/pull/"+id, map[string]any{"origin": origin, "cname": "go.clients.test"}, updated)
		call("POST", "/zones/http/pull/"+id+"/cache", map[string]any{"cache": "1h", "expiry": "1d"}, updated)
		call("POST", "/zones/http/pull/"+id+"/ssl", map[string]any{"http2": "Y", "redirect": "N", "mode": "S"}, updated)
		return
	}
	id := os.Args[4]
	files := map[string]any{"files": []string{"/clients/a.css", "/clients/c.css"}}
	call("POST", "/zones/http/pull/"+id+"/purge", files, "Zone Purged")
	call("POST", "/zones/http/pull/"+id+"/purge?delete=true", nil, "Zone Purged")
}
