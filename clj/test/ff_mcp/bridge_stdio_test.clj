(ns ff-mcp.bridge-stdio-test
  "Tests for ff-mcp.bridge.stdio against a scripted fake server: answers, skipped noise, errors, death and silence."
  (:require [clojure.java.io :as io]
            [clojure.test :refer [are deftest is testing]]
            [ff-mcp.bridge :as bridge]
            [ff-mcp.bridge.stdio :as stdio]))

(defn- python
  []
  (or (System/getProperty "ff_mcp.python") (System/getenv "FF_MCP_PYTHON") "python3"))

(defn- fake-command
  [mode]
  [(python) (str (io/file "clj" "test" "ff_mcp" "fake_mcp_server.py")) mode])

(defn- thrown
  "Returns [message data elapsed-ms] of the ex-info `f` throws, or nil."
  [f]
  (let [t0 (System/currentTimeMillis)]
    (try (f) nil
         (catch clojure.lang.ExceptionInfo e
           [(ex-message e) (ex-data e) (- (System/currentTimeMillis) t0)]))))

(defmacro with-conn
  [[sym mode opts] & body]
  `(let [~sym (stdio/start (fake-command ~mode) (merge {:init-timeout-ms 10000 :timeout-ms 5000} ~opts))]
     (try ~@body (finally (stdio/close! ~sym)))))

(deftest start-does-the-handshake-and-lists-tools
  (with-conn [conn "ok" {}]
    (is (= {:name "fake" :version "0"} (:server-info conn)))
    (is (= stdio/protocol-version (:protocol conn)))
    (is (= ["echo" "fail"] (stdio/list-tools conn)))))

(deftest call-tool-skips-notifications-and-non-json-lines
  (with-conn [conn "ok" {}]
    (is (= {:echo {:x [1 2.5 "#FF0000"] :nested {:k true}}}
           (stdio/call-tool conn "echo" {:x [1 2.5 "#FF0000"] :nested {:k true}})))
    (is (= {:echo {:n 2}} (stdio/call-tool conn "text-only" {:n 2})) "text content read as JSON")
    (is (some #{"this line is not JSON"} @(:skipped conn)))
    (is (some #(= "notifications/message" (:method %)) @(:skipped conn)))))

(deftest concurrent-calls-get-their-own-answers
  (with-conn [conn "ok" {}]
    (let [answers (doall (pmap #(stdio/call-tool conn "echo" {:i %}) (range 8)))]
      (is (= (map (fn [i] {:echo {:i i}}) (range 8)) answers)))))

(deftest tool-errors-become-ex-info-with-the-servers-text
  (with-conn [conn "ok" {}]
    (let [[message data] (thrown #(stdio/call-tool conn "fail" {}))]
      (is (= "Error executing tool fail: positive[0]: bad color" message))
      (is (= :ff-mcp/tool-error (:type data)))
      (is (= message (:server-message data))))
    (let [[message data] (thrown #(stdio/request! conn "boom" {}))]
      (is (re-find #"boom failed: Method not found" message))
      (is (= -32601 (:code data))))
    (testing "the connection stays usable after errors"
      (is (= {:echo {}} (stdio/call-tool conn "echo" {}))))))

(deftest a-server-that-exits-at-once-gives-ex-info-with-its-exit-code-and-stderr
  (let [[message data elapsed] (thrown #(stdio/start (fake-command "exit") {:init-timeout-ms 20000}))]
    (is (= :ff-mcp/server-died (:type data)))
    (is (= 3 (:exit-code data)))
    (is (re-find #"exited with code 3 before answering initialize" message))
    (is (re-find #"cannot start \(scripted failure\)" message))
    (is (< elapsed 15000) "reported when it dies, not at the deadline")))

(deftest a-silent-server-times-out
  (let [[message data elapsed] (thrown #(stdio/start (fake-command "silent") {:init-timeout-ms 800}))]
    (is (= :ff-mcp/timeout (:type data)))
    (is (re-find #"gave no answer to initialize within 800 ms" message))
    (is (< elapsed 10000))))

(deftest a-server-dying-mid-session-gives-ex-info
  (with-conn [conn "die-on-call" {}]
    (let [[message data elapsed] (thrown #(stdio/call-tool conn "echo" {}))]
      (is (= :ff-mcp/server-died (:type data)))
      (is (= 4 (:exit-code data)))
      (is (re-find #"dying on tools/call" message))
      (is (< elapsed 4000)))
    (is (not (stdio/alive? conn)))
    (testing "later calls fail at once"
      (is (= :ff-mcp/server-died (:type (second (thrown #(stdio/call-tool conn "echo" {}))))))))
  (with-conn [conn "hang-on-call" {:close-timeout-ms 500}]
    (let [[message data elapsed] (thrown #(stdio/call-tool conn "echo" {} 500))]
      (is (= :ff-mcp/timeout (:type data)))
      (is (re-find #"no answer to tools/call within 500 ms" message))
      (is (< elapsed 4000)))))

(deftest a-missing-command-gives-ex-info
  (let [[message data] (thrown #(stdio/start ["/nonexistent/ff-mcp" "serve"] {}))]
    (is (= :ff-mcp/spawn-failed (:type data)))
    (is (re-find #"cannot start MCP server" message))))

(deftest close-ends-the-server
  (let [conn (stdio/start (fake-command "ok") {})]
    (is (= 0 (stdio/close! conn)))
    (is (not (.isAlive ^Process (:proc conn))))
    (is (nil? (stdio/close! conn)) "closing twice is harmless")))

(deftest server-command-sources
  (are [given expected] (= expected (bridge/server-command given))
    ["python" "-m" "ff_mcp" "serve"] ["python" "-m" "ff_mcp" "serve"]
    "ff-mcp serve --data-dir /tmp/x" ["ff-mcp" "serve" "--data-dir" "/tmp/x"]
    "[\"/a b/python\", \"-m\", \"ff_mcp\", \"serve\"]" ["/a b/python" "-m" "ff_mcp" "serve"])
  (is (= (if-let [env (System/getenv "FF_MCP_COMMAND")] (bridge/server-command env) ["ff-mcp" "serve"])
         (bridge/server-command nil))
      "no :command: $FF_MCP_COMMAND when set, else ff-mcp serve"))

(deftest stdio-engine-wraps-errors-with-the-transport
  (let [e (bridge/stdio-engine {:command (fake-command "ok")})]
    (try
      (is (= :stdio (bridge/transport e)))
      (is (= {:echo {:a 1}} (bridge/call-tool e "echo" {:a 1})))
      (is (= {:echo {:a 1}} (bridge/call {:transport e} "echo" {:a 1})) "an Engine is a transport")
      (let [[message data] (thrown #(bridge/call-tool e "fail" {}))]
        (is (re-find #"bad color" message))
        (is (= :stdio (:transport data))))
      (finally (bridge/close-engine e)))))

(deftest the-shared-stdio-engine-replaces-a-dead-server
  (let [opts {:transport :stdio :command (fake-command "die-on-call")}
        first-engine (bridge/engine opts)]
    (try
      (let [[message data] (thrown #(bridge/call opts "echo" {}))]
        (is (= :ff-mcp/server-died (:type data)))
        (is (re-find #"exited with code 4 before answering tools/call" message)))
      (let [second-engine (bridge/engine opts)]
        (is (not (identical? first-engine second-engine)) "a fresh server after the old one died")
        (is (stdio/alive? (:conn second-engine))))
      (finally (bridge/close-engine (bridge/engine opts))))))
