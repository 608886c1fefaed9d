(ns ff-mcp.bridge-test
  "Tests for ff-mcp.bridge: transport choice, and (inside ff-mcp's JVM) equal goodness over in-process and stdio."
  (:require [clojure.data.json :as json]
            [clojure.java.io :as io]
            [clojure.string :as str]
            [clojure.test :refer [deftest is testing]]
            [ff-mcp.bridge :as bridge]
            [music-topos.parallel-color-fork :as pcf]))

(def warm ["#FF0000" "#E67F86" [250 30 20] "D82626"])
(def cool ["#0000FF" "#1316BB" [0.1 0.2 0.9] "#2626D8"])

(defn- thrown
  [f]
  (try (f) nil (catch clojure.lang.ExceptionInfo e [(ex-message e) (ex-data e)])))

(deftest auto-picks-in-process-inside-ff-mcp-and-stdio-outside
  (if (bridge/in-process?)
    (is (= :in-process (bridge/transport (bridge/engine))))
    (let [[message data] (thrown #(bridge/engine {:transport :in-process}))]
      (is (re-find #"no in-process engine" message))
      (is (= :ff-mcp/no-engine (:type data))))))

(deftest bad-transport-option-gives-ex-info
  (is (re-find #"transport must be :auto, :in-process, :stdio or an Engine"
               (first (thrown #(bridge/engine {:transport :carrier-pigeon}))))))

(deftest register-engine-needs-a-function
  (is (re-find #"needs a java.util.function.Function" (first (thrown #(bridge/register-engine! {}))))))

(deftest in-process-replies-become-results-or-ex-info
  (let [f (reify java.util.function.Function
            (apply [_ req]
              (if (= "fail" (:tool req))
                {:error "positive[0]: bad color" :python-type "ValueError"}
                {:result {:echo (:arguments req)}})))
        e (bridge/->InProcessEngine f)]
    (is (= {:echo {:a [1 2]}} (bridge/call-tool e "echo" {:a [1 2]})))
    (let [[message data] (thrown #(bridge/call-tool e "fail" {}))]
      (is (= "positive[0]: bad color" message))
      (is (= {:type :ff-mcp/tool-error :tool "fail" :transport :in-process :python-type "ValueError"}
             (select-keys data [:type :tool :transport :python-type]))))))

(defn- record!
  [transport r]
  (when-let [path (System/getenv "FF_MCP_CLJ_RESULTS")]
    (spit (io/file path)
          (str (json/write-str {:transport (name transport) :suite "bridge-test"
                                :goodness_pos (:goodness-pos r) :goodness_neg (:goodness-neg r)
                                :margin (:margin r) :accuracy (:accuracy r)})
               "\n")
          :append true)))

(deftest both-transports-give-the-same-goodness
  (if-not (and (bridge/in-process?) (System/getenv "FF_MCP_COMMAND"))
    (is true "needs ff-mcp's JVM and FF_MCP_COMMAND; run by tests/clojure under JPype")
    (let [in-process (pcf/ff-color-learning warm cool :epochs 30 :transport :in-process)
          stdio (pcf/ff-color-learning warm cool :epochs 30 :transport :stdio)]
      (record! :in-process in-process)
      (record! :stdio stdio)
      (is (= :stdio (bridge/transport (bridge/engine {:transport :stdio}))))
      (is (= (:goodness-pos in-process) (:goodness-pos stdio)))
      (is (= (:goodness-neg in-process) (:goodness-neg stdio)))
      (is (= (:margin in-process) (:margin stdio)))
      (is (= (:accuracy in-process) (:accuracy stdio)))
      (testing "a trained layer scores the same over both"
        (is (= (:goodness (pcf/forward (:layer in-process) cool))
               (:goodness (pcf/forward (:layer stdio) cool)))))
      (testing "errors read the same"
        (let [bad {:name "bad" :positive ["#GG0000"] :epochs 1}
              [m1] (thrown #(bridge/call {:transport :in-process} "ff_color_learn" bad))
              [m2] (thrown #(bridge/call {:transport :stdio} "ff_color_learn" bad))]
          (is (= m1 (str/replace m2 #"^Error executing tool ff_color_learn: " ""))))))))
